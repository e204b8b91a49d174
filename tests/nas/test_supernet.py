"""Weight sharing: a sliced supernet computes exactly what the standalone model computes."""
import numpy as np
import pytest
import tensorflow as tf

import movinet_tf
from movinet_tf.models import specs as specs_lib
from movinet_tf.nas.supernet import Supernet

from helpers import randomize_weights, random_video
from tests.nas.spaces import small_space

_ACTS = dict(activation="hard_swish", gating_activation="hard_sigmoid",
             classifier_activation="hard_swish")


def _standalone(spec, stream, conv_type, se_type):
    return movinet_tf.build_model("x", stream=stream, conv_type=conv_type, se_type=se_type,
                                  num_classes=5, block_specs=specs_lib.format_spec(spec),
                                  use_positional_encoding=False, **_ACTS)


def _has_strided_temporal_only_kernel(spec):
    return any(l.spatial_stride == 2 and l.kernel_size[1] == 1
               for b in spec.blocks for l in b.layers)


@pytest.mark.parametrize("stream,conv_type,se_type", [
    (True, "2plus1d", "2plus3d"),    # the released stream configuration
    (False, "3d", "3d"),             # the base configuration
    (True, "3d_2plus1d", "2d"),
])
def test_sliced_supernet_equals_standalone_model_with_copied_weights(stream, conv_type, se_type):
    space = small_space()
    supernet = Supernet(space, 5, causal=stream, conv_type=conv_type, se_type=se_type, **_ACTS)
    randomize_weights(supernet, seed=1)  # no zero ReZero scales, no identity BatchNorms
    video = random_video([2, 5, 32, 32, 3])
    rng = np.random.default_rng(3)
    checked, strided_temporal_only = [], False
    # At least one point with a strided (kt, 1, 1) depthwise layer, whose '3d' conv once
    # skipped the stride (layers/ops.py, `conv_time`).
    while len(checked) < 2 or not strided_temporal_only:
        spec = space.decode(space.sample(rng))
        strided_temporal_only |= _has_strided_temporal_only_kernel(spec)
        model = _standalone(spec, stream, conv_type, se_type)
        supernet.copy_to_model(spec, model)
        expected = model(video, training=False).numpy()
        got = supernet.forward(video, spec).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
        checked.append(expected)
    # Two architectures from the same weights really differ (the check is not vacuous).
    assert np.abs(checked[0] - checked[1]).max() > 1e-3


def test_kernels_are_centre_crops_and_channels_are_prefixes():
    space = small_space()
    supernet = Supernet(space, 5)
    randomize_weights(supernet, seed=2)
    spec = specs_lib.parse_spec("""
stem 8
block 8: e16_k155_s2
block 16: e32_k511_s2 e32_k333
block 16: e32_k533_s2
block 24: e48_k133
block 32: e64_k177_s2
head 24
classifier 24""")
    sliced = supernet.sliced_weights(spec)
    full = supernet.w
    # The largest kernel is (7, 7, 7); a (1, 5, 5) spatial kernel is its centre.
    np.testing.assert_array_equal(sliced["block0_layer0/feature/kernel"],
                                  full["block0_layer0/feature/kernel"][:, 1:6, 1:6, :, :16])
    np.testing.assert_array_equal(sliced["block1_layer0/feature/temporal_kernel"],
                                  full["block1_layer0/feature/temporal_kernel"][1:6, :, :, :, :32])
    np.testing.assert_array_equal(sliced["block1_layer1/expansion/kernel"],
                                  full["block1_layer1/expansion/kernel"][..., :16, :32])
    assert "block1_layer1/skip/projection/kernel" not in sliced  # identity shortcut
    assert "block2_layer1/expansion/kernel" not in sliced        # depth 1: slot 1 is skipped


def test_spec_outside_the_space_is_rejected():
    supernet = Supernet(small_space(), 5)
    spec = specs_lib.parse_spec(movinet_tf.models.MODEL_SPECS["t0"])
    with pytest.raises(ValueError, match="space"):
        supernet.forward(np.zeros([1, 2, 32, 32, 3], np.float32), spec)


def test_training_step_changes_only_the_sampled_slices():
    space = small_space()
    supernet = Supernet(space, 5)
    randomize_weights(supernet, seed=4)
    spec = space.decode(space.sample(np.random.default_rng(5)))
    video = tf.constant(random_video([2, 4, 32, 32, 3]))
    before = {k: v.numpy().copy() for k, v in supernet.w.items()}
    with tf.GradientTape() as tape:
        logits = supernet.forward(video, spec, training=True, update_stats=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits([0, 3], logits))
    grads = tape.gradient(loss, supernet.trainable_weights)
    for grad, weight in zip(grads, supernet.trainable_weights):
        if grad is not None:
            weight.assign_sub(0.1 * grad)
    assert np.isfinite(float(loss))
    stem = supernet.w["stem/kernel"].numpy()
    width = spec.stem_filters
    assert np.abs(stem[..., :width] - before["stem/kernel"][..., :width]).max() > 0
    np.testing.assert_array_equal(stem[..., width:], before["stem/kernel"][..., width:])
    # BatchNorm moving statistics move only for the active channels.
    mean = supernet.w["stem/bn/moving_mean"].numpy()
    assert np.abs(mean[:width] - before["stem/bn/moving_mean"][:width]).max() > 0
    np.testing.assert_array_equal(mean[width:], before["stem/bn/moving_mean"][width:])


def test_recalibrated_statistics_are_those_of_the_calibration_batch():
    space = small_space()
    supernet = Supernet(space, 5)
    randomize_weights(supernet, seed=6)
    spec = space.decode(space.sample(np.random.default_rng(7)))
    video = tf.constant(random_video([3, 4, 32, 32, 3], seed=8))
    before = supernet.w["stem/bn/moving_mean"].numpy().copy()
    supernet.recalibrate(spec, video)
    # With the moving statistics set from `video`, inference on `video` normalises it
    # exactly as its own batch statistics do.
    np.testing.assert_allclose(supernet.forward(video, spec, training=False).numpy(),
                               supernet.forward(video, spec, batch_stats=True).numpy(),
                               atol=1e-5)
    width = spec.stem_filters
    np.testing.assert_array_equal(supernet.w["stem/bn/moving_mean"].numpy()[width:],
                                  before[width:])
    assert supernet.momentum == 0.99
    # On other clips, inference uses the stored statistics, not the clips' own.
    clips = tf.constant(random_video([3, 4, 32, 32, 3], seed=10) * 0.5)
    assert np.abs(supernet.forward(clips, spec, training=False).numpy()
                  - supernet.forward(clips, spec, batch_stats=True).numpy()).max() > 1e-3
