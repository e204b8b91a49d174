"""Activations used by MoViNets, with the constants of the published models.

The released checkpoints were trained with these exact formulas; `hard_sigmoid`
in particular multiplies by the literal 0.16667 rather than 1/6, and matching it
matters for bit-level parity with the reference implementation.
"""
import tensorflow as tf

_HARD_SIGMOID_SCALE = 0.16667


def hard_sigmoid(x):
    """relu6(x + 3) * 0.16667, the gate of the stream models' squeeze-excitation."""
    return tf.nn.relu6(x + 3.0) * _HARD_SIGMOID_SCALE


def hard_swish(x):
    """x * relu6(x + 3) / 6; TFLite fuses this pattern into one HARD_SWISH op."""
    return x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


def swish(x):
    """x * sigmoid(x), written out so exported graphs carry no custom gradient."""
    return x * tf.sigmoid(x)


def identity(x):
    return x


_ACTIVATIONS = {
    "swish": swish,
    "simple_swish": swish,
    "hard_swish": hard_swish,
    "hard_sigmoid": hard_sigmoid,
    "sigmoid": tf.sigmoid,
    "relu": tf.nn.relu,
    "relu6": tf.nn.relu6,
    "linear": identity,
    "identity": identity,
}

ACTIVATION_NAMES = tuple(sorted(_ACTIVATIONS))


def get_activation(name):
    """Returns the activation function called `name` (None means identity).

    Raises:
        ValueError: if the name is unknown; the message lists the valid names.
    """
    if name is None:
        return identity
    if name not in _ACTIVATIONS:
        raise ValueError(
            f"Unknown activation {name!r}; expected one of {', '.join(ACTIVATION_NAMES)}.")
    return _ACTIVATIONS[name]
