"""Tests for movinet_tf.training.optimizer: the warmup-cosine schedule and the optimizer choice."""
import keras
import numpy as np
import pytest

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


@pytest.mark.parametrize("kind, cls", [("rmsprop", keras.optimizers.RMSprop),
                                       ("sgd", keras.optimizers.SGD),
                                       ("adam", keras.optimizers.Adam),
                                       ("adamw", keras.optimizers.AdamW)])
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
