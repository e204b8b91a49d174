import numpy as np
import pytest
import tensorflow as tf

from movinet_tf.layers import activations


def test_hard_sigmoid_uses_the_published_constant():
    x = tf.constant([-4.0, -3.0, 0.0, 1.5, 3.0, 10.0])
    expected = np.clip(x.numpy() + 3.0, 0.0, 6.0) * 0.16667  # not 1/6
    np.testing.assert_array_equal(activations.hard_sigmoid(x).numpy(), expected.astype(np.float32))
    assert activations.hard_sigmoid(tf.constant(3.0)).numpy() == pytest.approx(1.00002, abs=1e-7)


def test_hard_swish_and_swish_formulas():
    x = np.linspace(-6, 6, 49).astype(np.float32)
    np.testing.assert_allclose(activations.hard_swish(x).numpy(),
                               x * np.clip(x + 3, 0, 6) / 6, atol=1e-6)
    np.testing.assert_allclose(activations.swish(x).numpy(), x / (1 + np.exp(-x)), atol=1e-6)


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="hard_swish"):
        activations.get_activation("hardswish")
