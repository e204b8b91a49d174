"""One traced graph for every architecture: the same logits, gradients and updates as the
eager, sliced `Supernet.forward` and the standalone model."""
import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf
import keras

import movinet_tf
from movinet_tf.models import specs as specs_lib
from movinet_tf.nas import config as nas_config
from movinet_tf.nas.supernet import Supernet
from movinet_tf.nas.traced import TracedSupernet

from helpers import randomize_weights, random_video
from tests.nas.spaces import small_space

_ACTS = dict(activation="hard_swish", gating_activation="hard_sigmoid",
             classifier_activation="hard_swish")


def _features(spec, space):
    """Which of the traced graph's special cases a spec exercises."""
    layers = [(b, l, layer) for b, block in enumerate(spec.blocks)
              for l, layer in enumerate(block.layers)]
    return {
        # a strided (kt, 1, 1) layer: its 1-wide tap sits left of the 7-wide kernel's centre
        "strided_pointwise": any(x.spatial_stride == 2 and x.kernel_size[1] == 1
                                 for _, _, x in layers),
        # a causal 3- or 5-tap kernel inside the 7-tap one
        "short_time_kernel": any(x.kernel_size[0] in (3, 5) for _, _, x in layers),
        "skipped_slot": any(len(block.layers) < 2 for block in spec.blocks),
        # block 3's unstrided first layer with equal widths: identity shortcut
        "identity_shortcut": spec.blocks[2].out_filters == spec.blocks[3].out_filters,
        # a classifier narrower than the widest: its hidden channels are masked
        "narrow_classifier": spec.classifier_filters < max(space.classifier_widths),
    }


def _specs(space, count, seed):
    """`count` sampled specs that together exercise every case of `_features`."""
    rng = np.random.default_rng(seed)
    specs, seen = [], set()
    cases = len(_features(space.decode(space.sample(rng)), space))
    while len(specs) < count or len(seen) < cases:
        spec = space.decode(space.sample(rng))
        new = {k for k, v in _features(spec, space).items() if v} - seen
        if new or len(specs) < count - (cases - len(seen)):
            specs.append(spec)
            seen |= new
    return specs


@pytest.mark.parametrize("stream,conv_type,se_type", [
    (True, "2plus1d", "2plus3d"),    # the released stream configuration
    (False, "3d", "3d"),             # the base configuration
    (True, "3d_2plus1d", "2d"),
])
def test_traced_logits_equal_the_standalone_model_and_the_eager_forward(stream, conv_type,
                                                                         se_type):
    space = small_space()
    supernet = Supernet(space, 5, causal=stream, conv_type=conv_type, se_type=se_type, **_ACTS)
    randomize_weights(supernet, seed=1)  # no zero ReZero scales, no identity BatchNorms
    traced = TracedSupernet(supernet)
    video = random_video([2, 5, 32, 32, 3])
    outputs = []
    for spec in _specs(space, 3, seed=3):
        model = movinet_tf.build_model(
            "x", stream=stream, conv_type=conv_type, se_type=se_type, num_classes=5,
            block_specs=specs_lib.format_spec(spec), use_positional_encoding=False, **_ACTS)
        supernet.copy_to_model(spec, model)
        expected = model(video, training=False).numpy()
        got = traced.logits(video, spec, batch_stats=False).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
        np.testing.assert_allclose(traced.logits(video, spec, batch_stats=True).numpy(),
                                   supernet.forward(video, spec, batch_stats=True).numpy(),
                                   atol=1e-5, rtol=0)
        outputs.append(got)
    assert np.abs(outputs[0] - outputs[1]).max() > 1e-3  # architectures really differ
    # One graph per BatchNorm mode served every architecture.
    assert traced.tracing_counts()["logits"] == 2


def _used(supernet, spec):
    """name -> 0/1 array: which entries of each shared weight the sliced model takes."""
    names = [name for name, var in supernet.w.items() if var.trainable]
    with tf.GradientTape() as tape:
        sliced = supernet.sliced_weights(spec)
        total = tf.add_n([tf.reduce_sum(v) for k, v in sliced.items() if k in names])
    grads = tape.gradient(total, [supernet.w[name] for name in names])
    return {name: np.zeros(supernet.w[name].shape) if g is None else tf.convert_to_tensor(g).numpy()
            for name, g in zip(names, grads)}


def test_gradients_reach_only_the_architectures_slices():
    space = small_space()
    supernet = Supernet(space, 5, **_ACTS)
    randomize_weights(supernet, seed=4)
    traced = TracedSupernet(supernet)
    video = tf.constant(random_video([2, 4, 32, 32, 3], seed=5))
    labels = tf.constant([0, 3])
    names = [name for name, var in supernet.w.items() if var.trainable]
    variables = [supernet.w[name] for name in names]
    for spec in _specs(space, 2, seed=6):
        grads = {}
        for which, logits_fn in (
                ("eager", lambda: supernet.forward(video, spec, batch_stats=True)),
                ("traced", lambda: traced.logits(video, spec, batch_stats=True))):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits_fn()))
            grads[which] = [np.zeros(v.shape) if g is None else tf.convert_to_tensor(g).numpy()
                            for g, v in zip(tape.gradient(loss, variables), variables)]
        used = _used(supernet, spec)
        for name, eager, got in zip(names, grads["eager"], grads["traced"]):
            assert np.all(got[used[name] == 0] == 0), name  # exactly zero outside the slice
            np.testing.assert_allclose(got, eager, atol=1e-5, rtol=1e-4, err_msg=name)
        # Not vacuous: skipped slots exist and the used slices do get gradients.
        assert any(not used[n].any() for n in names)
        assert np.abs(grads["traced"][names.index("stem/kernel")]).max() > 0


def _eager_step(supernet, optimizer, spec, video, labels):
    """The search's former eager step: sliced forward, clip 5 per tensor, skip None gradients."""
    with tf.GradientTape() as tape:
        logits = supernet.forward(video, spec, training=True, update_stats=True)
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)(tf.one_hot(labels, 5),
                                                                      logits)
    grads = tape.gradient(loss, supernet.trainable_weights)
    pairs = [(tf.clip_by_norm(g, 5.0), v) for g, v in zip(grads, supernet.trainable_weights)
             if g is not None]
    optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
    return float(loss)


def test_train_step_and_recalibration_equal_the_eager_ones():
    space = small_space()
    nets = [Supernet(space, 5, **_ACTS) for _ in range(2)]
    for net in nets:
        randomize_weights(net, seed=7)
    # Plain SGD: a zero gradient leaves a weight unchanged, so both updates are comparable.
    optimizers = [keras.optimizers.SGD(0.05) for _ in nets]
    for net, optimizer in zip(nets, optimizers):
        optimizer.build(net.trainable_weights)
    traced = TracedSupernet(nets[1], optimizers[1],
                            keras.losses.CategoricalCrossentropy(from_logits=True))
    specs = _specs(space, 2, seed=8)
    initial = nets[1].w["stem/kernel"].numpy().copy()
    for step, spec in enumerate(specs):
        video = tf.constant(random_video([3, 4, 32, 32, 3], seed=9 + step))
        labels = tf.constant([1, 4, 2])
        eager_loss = _eager_step(nets[0], optimizers[0], spec, video, labels)
        traced_loss, _ = traced.train_step(video, labels, spec)
        assert float(traced_loss) == pytest.approx(eager_loss, abs=1e-5)
    calibration = tf.constant(random_video([3, 4, 32, 32, 3], seed=20))
    nets[0].recalibrate(specs[0], calibration)
    traced.recalibrate(specs[0], calibration)
    for name in nets[0].w:  # weights, moving statistics, ReZero scales
        np.testing.assert_allclose(nets[1].w[name].numpy(), nets[0].w[name].numpy(),
                                   atol=1e-5, rtol=1e-5, err_msg=name)
    assert np.abs(nets[1].w["stem/kernel"].numpy() - initial).max() > 1e-4
    assert traced.tracing_counts()["train_step"] == 1


@pytest.mark.slow
def test_step_time_benchmark_runs_on_a_toy_config(tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(
        "nas_step_time", os.path.join(repo, "benchmarks", "nas_step_time.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cfg = nas_config.load_config(os.path.join(repo, "configs", "search", "test_tiny.yaml"),
                                 [f"data.path={tmp_path / 'builtin'}"])
    results = bench.measure(cfg, steps=2, warmup=1)
    for path in ("eager", "traced"):
        assert all(value > 0 for key in ("train", "score") for value in results[path][key])
    # Four architectures trained and four scored: one graph each.
    assert results["traced"]["traces"] == {"logits": 1, "recalibrate": 0, "train_step": 1}
    assert "eager / traced" in bench.format_results(results, cfg, 2)
