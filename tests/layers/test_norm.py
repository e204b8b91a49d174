"""The fused BatchNorm equals Keras's BatchNormalization: outputs, gradients, moving averages."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from movinet_tf.layers.norm import BatchNorm

# float32 sums over ~2e4 elements in another order.
ATOL = 1e-4


def _pair(shape, seed):
    rng = np.random.default_rng(seed)
    ours = BatchNorm(momentum=0.9, epsilon=1e-3)
    keras_bn = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3)
    for layer in (ours, keras_bn):
        layer.build(shape)
    values = [rng.uniform(0.5, 1.5, shape[-1]), rng.normal(0, 1, shape[-1]),
              rng.normal(0, 1, shape[-1]), rng.uniform(0.5, 2.0, shape[-1])]
    for layer in (ours, keras_bn):
        for variable, value in zip((layer.gamma, layer.beta, layer.moving_mean,
                                    layer.moving_variance), values):
            variable.assign(value.astype(np.float32))
    x = tf.constant(rng.normal(2.0, 3.0, shape).astype(np.float32))
    return ours, keras_bn, x


@pytest.mark.parametrize("shape", [(2, 5, 7, 6, 8), (3, 9, 4, 8)])
def test_training_matches_keras_batch_normalization(shape):
    ours, keras_bn, x = _pair(shape, seed=0)
    results = []
    for layer in (ours, keras_bn):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(y))
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append((y.numpy(), [g.numpy() for g in grads],
                        layer.moving_mean.numpy(), layer.moving_variance.numpy()))
    (y0, g0, m0, v0), (y1, g1, m1, v1) = results
    np.testing.assert_allclose(y0, y1, atol=ATOL)
    for a, b in zip(g0, g1):
        np.testing.assert_allclose(a, b, atol=ATOL * max(1.0, np.abs(b).max()) * 10, rtol=1e-3)
    np.testing.assert_allclose(m0, m1, atol=1e-5)
    np.testing.assert_allclose(v0, v1, atol=1e-5, rtol=1e-5)
    assert not np.allclose(m0, 0.0)  # The update really happened (inputs have mean 2).


def test_inference_and_frozen_use_moving_statistics():
    ours, keras_bn, x = _pair((2, 3, 4, 4, 5), seed=1)
    np.testing.assert_allclose(ours(x, training=False), keras_bn(x, training=False), atol=1e-5)
    ours.trainable = False
    before = ours.moving_mean.numpy().copy()
    np.testing.assert_allclose(ours(x, training=True), keras_bn(x, training=False), atol=1e-5)
    np.testing.assert_array_equal(ours.moving_mean.numpy(), before)


def test_round_trip_keeps_class_and_config(tmp_path):
    inputs = keras.Input((None, 4, 4, 3))
    model = keras.Model(inputs, BatchNorm(momentum=0.8, epsilon=1e-2, name="bn")(inputs))
    path = tmp_path / "bn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    layer = loaded.get_layer("bn")
    assert isinstance(layer, BatchNorm)
    assert layer.momentum == 0.8 and layer.epsilon == 1e-2
