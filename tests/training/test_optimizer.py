"""Tests for movinet_tf.training.optimizer: the warmup-cosine schedule and the optimizer choice."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from movinet_tf import config
from movinet_tf.training import optimizer


def test_learning_rate_scales_with_global_batch():
    cfg = config.load_config("a0_stream", ["data.batch_size=8", "train.steps=100",
                                           "train.warmup_steps=10"])
    peak = 1.8 * 8 / 1024
    assert config.learning_rate(cfg) == pytest.approx(peak)
    lr_at = optimizer.make_learning_rate(cfg)
    assert float(lr_at(0)) == pytest.approx(0.0, abs=1e-9)
    assert float(lr_at(5)) == pytest.approx(peak / 2, rel=1e-5)
    assert float(lr_at(10)) == pytest.approx(peak, rel=1e-5)
    assert float(lr_at(55)) == pytest.approx(peak * 0.5 * (1 + np.cos(np.pi * 0.5)), rel=1e-4)
    assert float(lr_at(100)) == pytest.approx(0.0, abs=1e-9)
    # The optimizer starts at step 0 of that schedule.
    assert float(optimizer.make_optimizer(cfg).learning_rate) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("kind, cls", [("rmsprop", optimizer.FusedRMSprop),
                                       ("sgd", keras.optimizers.SGD),
                                       ("adam", optimizer.FusedAdam),
                                       ("adamw", optimizer.FusedAdamW)])
def test_make_optimizer_follows_train_keys(kind, cls):
    cfg = config.load_config("tiny", [f"train.optimizer={kind}", "train.momentum=0.5",
                                      "train.epsilon=0.01", "train.schedule=constant"])
    made = optimizer.make_optimizer(cfg)
    assert type(made) is cls and made.name == "optimizer"
    assert float(made.learning_rate) == pytest.approx(config.learning_rate(cfg))
    if kind in ("rmsprop", "sgd"):
        assert made.momentum == 0.5
    if kind != "sgd":
        assert made.epsilon == 0.01


def test_build_optimizer_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="Unknown optimizer 'lamb'"):
        optimizer.build_optimizer("lamb", 0.1)


_FUSED_CASES = [
    # (fused class, Keras class, kwargs, the TF kernel the fused update must use)
    (optimizer.FusedAdam, keras.optimizers.Adam, {"epsilon": 1e-7}, "ResourceApplyAdam"),
    (optimizer.FusedAdamW, keras.optimizers.AdamW, {"epsilon": 1e-3, "weight_decay": 0.05},
     "ResourceApplyAdam"),
    (optimizer.FusedRMSprop, keras.optimizers.RMSprop,
     {"rho": 0.9, "momentum": 0.9, "epsilon": 1.0}, "ResourceApplyRMSProp"),
    (optimizer.FusedRMSprop, keras.optimizers.RMSprop,
     {"rho": 0.8, "momentum": 0.5, "epsilon": 0.1, "centered": True},
     "ResourceApplyCenteredRMSProp"),
]


def _apply_steps(cls, kwargs, initial, gradients):
    """The variables after one `apply` per entry of `gradients`, inside a tf.function."""
    variables = [keras.Variable(value, name=f"w{i}") for i, value in enumerate(initial)]
    schedule = keras.optimizers.schedules.CosineDecay(0.0, 10, warmup_target=0.05,
                                                      warmup_steps=2)
    opt = cls(learning_rate=schedule, name="optimizer", **kwargs)
    opt.build(variables)
    step = tf.function(lambda grads: opt.apply(grads, variables))
    for grads in gradients:
        step(grads)
    ops = {op.type for op in step.get_concrete_function(gradients[0]).graph.get_operations()}
    return [v.numpy() for v in variables], ops, [s.path for s in opt.variables]


@pytest.mark.parametrize("fused, plain, kwargs, kernel", _FUSED_CASES)
def test_fused_updates_match_keras_step_for_step(fused, plain, kwargs, kernel):
    # Random weights and gradients of several shapes (a bias, a depthwise and a dense
    # kernel), 6 steps through warmup and decay: each fused kernel must compute Keras's
    # own update; float32 rounding of the reordered terms only (rtol 1e-5).
    rng = np.random.default_rng(3)
    shapes = [(7,), (3, 3, 1, 5), (4, 6)]
    initial = [rng.normal(size=s).astype(np.float32) for s in shapes]
    gradients = [[tf.constant(rng.normal(size=s).astype(np.float32) * 10 ** rng.uniform(-3, 1))
                  for s in shapes] for _ in range(6)]
    ours, ops, slots = _apply_steps(fused, kwargs, initial, gradients)
    theirs, keras_ops, keras_slots = _apply_steps(plain, kwargs, initial, gradients)
    assert kernel in ops and kernel not in keras_ops
    assert slots == keras_slots  # checkpoints key the slots by these paths
    for ours_value, theirs_value, start in zip(ours, theirs, initial):
        assert not np.allclose(theirs_value, start)
        np.testing.assert_allclose(ours_value, theirs_value, rtol=1e-5, atol=1e-6)


def test_rmsprop_without_momentum_runs_keras_update():
    # No momentum slot for the fused kernel: Keras's own arithmetic, the same result.
    rng = np.random.default_rng(4)
    initial = [rng.normal(size=(5, 3)).astype(np.float32)]
    gradients = [[tf.constant(rng.normal(size=(5, 3)).astype(np.float32))] for _ in range(3)]
    kwargs = {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-3}
    ours, ops, _ = _apply_steps(optimizer.FusedRMSprop, kwargs, initial, gradients)
    theirs, _, _ = _apply_steps(keras.optimizers.RMSprop, kwargs, initial, gradients)
    assert "ResourceApplyRMSProp" not in ops
    np.testing.assert_array_equal(ours[0], theirs[0])
