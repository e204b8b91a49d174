"""BatchNorm recalibration: pooled statistics, checked against numpy and a training-mode pass."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from movinet_tf.training import bn_calibration
from movinet_tf import checkpoints
from movinet_tf import config as config_lib
from movinet_tf import data as data_lib
from movinet_tf import train
from movinet_tf.checkpoints import model_from_config
from tests.helpers import randomize_weights


def _batches(num, shape, seed=0):
    rng = np.random.default_rng(seed)
    # Different offsets per batch, so the spread of the batch means matters.
    return [(rng.normal(size=shape) * (1 + i) + i).astype(np.float32) for i in range(num)]


def test_statistics_are_those_of_all_inputs_pooled():
    inputs = keras.Input((4, 6, 6, 3))
    conv = keras.layers.Conv3D(5, 3, padding="same", name="conv")
    norm = keras.layers.BatchNormalization(name="norm")
    model = keras.Model(inputs, keras.layers.ReLU()(norm(conv(inputs))))
    randomize_weights(model)
    batches = _batches(3, (2, 4, 6, 6, 3))
    gamma_before = norm.gamma.numpy()

    used = bn_calibration.recalibrate(model, iter(batches), num_batches=5)

    assert used == 3
    features = np.concatenate([conv(b).numpy() for b in batches]).reshape(-1, 5)
    np.testing.assert_allclose(norm.moving_mean.numpy(), features.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(norm.moving_variance.numpy(), features.var(0), rtol=1e-4)
    np.testing.assert_array_equal(norm.gamma.numpy(), gamma_before)
    assert norm.momentum == pytest.approx(0.99)  # Restored.


def test_one_batch_makes_inference_equal_training_mode():
    # After recalibrating on one batch, inference mode on it normalises every layer of the
    # MoViNet with that batch's statistics, which is what the training-mode pass does.
    cfg = config_lib.load_config("tiny")
    model = model_from_config(cfg)
    randomize_weights(model, seed=1)
    video = _batches(1, (4, 8, 32, 32, 3), seed=2)[0] * 0.1 + 0.5
    expected = model(video, training=True).numpy()
    assert not np.allclose(model(video, training=False).numpy(), expected, atol=1e-3)

    bn_calibration.recalibrate(model, [(video, np.zeros(4))], num_batches=1)

    np.testing.assert_allclose(model(video, training=False).numpy(), expected, atol=1e-4)


def test_frozen_layers_keep_their_statistics():
    cfg = config_lib.load_config("tiny")
    model = model_from_config(cfg)
    randomize_weights(model, seed=3)
    every = bn_calibration.batch_norm_layers(model)
    frozen, free = every[:2], every[2:]
    for layer in frozen:
        layer.trainable = False
    assert bn_calibration.batch_norm_layers(model) == free
    before = {id(layer): layer.moving_mean.numpy() for layer in every}

    bn_calibration.recalibrate(model, _batches(2, (2, 8, 32, 32, 3)), num_batches=2)

    for layer in frozen:
        np.testing.assert_array_equal(layer.moving_mean.numpy(), before[id(layer)])
    for layer in free:
        assert not np.allclose(layer.moving_mean.numpy(), before[id(layer)])
    model.backbone.trainable = False  # The tiny model's head BatchNorm is in the backbone.
    with pytest.raises(ValueError, match="no trainable BatchNormalization"):
        bn_calibration.recalibrate(model, _batches(1, (2, 8, 32, 32, 3)), num_batches=1)


def test_bad_arguments():
    cfg = config_lib.load_config("tiny")
    model = model_from_config(cfg)
    with pytest.raises(ValueError, match="num_batches"):
        bn_calibration.recalibrate(model, [], num_batches=0)
    with pytest.raises(ValueError, match="no batches"):
        bn_calibration.recalibrate(model, [], num_batches=2)
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no trainable BatchNormalization"):
        bn_calibration.recalibrate(plain, [np.zeros((1, 3), np.float32)], num_batches=1)


def test_training_saves_recalibrated_statistics(tmp_path):
    # With train.bn_recalibration_batches, the last checkpoint holds the stem BatchNorm's
    # statistics of its inputs over training clips (computed here with tf.nn.conv3d);
    # after 4 steps of momentum 0.99 the moving averages are still near their start.
    cfg = config_lib.load_config("tiny", ["train.bn_recalibration_batches=3"])
    train.train_and_evaluate(cfg, str(tmp_path), mode="train")

    def stem(checkpoint):
        _, model, _ = checkpoints.load_run(str(tmp_path), checkpoint=str(tmp_path / checkpoint))
        return model.backbone.stem

    moving, recalibrated = stem("ckpt-4").bn, stem("ckpt-6")
    features = [tf.nn.conv3d(video, recalibrated.kernel, [1, 1, 2, 2, 1], "SAME").numpy()
                for video, _ in data_lib.build_dataset(cfg.data, "train", training=True)]
    features = np.concatenate(features).reshape(-1, features[0].shape[-1])
    np.testing.assert_allclose(recalibrated.bn.moving_mean.numpy(), features.mean(0),
                               rtol=0.3, atol=0.02)
    np.testing.assert_allclose(recalibrated.bn.moving_variance.numpy(), features.var(0), rtol=0.3)
    assert np.max(np.abs(features.var(0) - moving.moving_variance.numpy())) > 0.3


def test_config_key_is_checked():
    with pytest.raises(ValueError, match="bn_recalibration_batches.*>= 0"):
        config_lib.load_config("tiny", ["train.bn_recalibration_batches=-1"])
    with pytest.raises(ValueError, match="runtime.strategy=default"):
        config_lib.load_config("tiny", ["train.bn_recalibration_batches=2",
                                        "runtime.strategy=mirrored"])
