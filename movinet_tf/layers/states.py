"""Naming and checking of streaming states.

Streaming state travels as one flat ``dict[str, Tensor]``. Every stateful layer
is given a prefix (``state_block1_layer0``, ``state_head``) and names its states
with `state_name`, so the names match the published MoViNet models, e.g.
``state_block1_layer0_stream_buffer`` or ``state_head_pool_frame_count``.

One protocol for every stateful layer (conv, pools, positional encoding,
squeeze-excitation, block, backbone) and for the models:

* ``state_specs(input_shape, dtype=tf.float32)`` -> dict name -> named
  ``tf.TensorSpec``, for the layer's input [B, T, H, W, C] (dims ints or None).
* ``state_dims(input_shape, dtype=tf.float32)`` -> dict name -> `StateDims`,
  the same shapes where dims may also be scalar tensors: ``init_states`` uses
  it for a dynamic video shape inside a tf.function. ``state_specs`` is
  ``to_tensor_specs(state_dims(...))``, so the shapes live in one place.
* Layers that change the resolution also have ``output_dims(input_shape)``,
  which the backbone uses to hand each layer its input shape.
"""
import collections

import tensorflow as tf

FRAME_COUNT_DTYPE = tf.int32

# The shape and dtype of one state, as the layers compute it: dims are ints,
# None, or scalar tensors (so that `init_states` can take a dynamic video shape
# inside a tf.function). `to_tensor_specs` gives the public view.
StateDims = collections.namedtuple("StateDims", ["shape", "dtype"])


def to_tensor_specs(dims_by_name):
    """dict name -> StateDims as dict name -> tf.TensorSpec (named; tensor dims become None).

    Every ``state_specs(input_shape, dtype)`` method returns this one type.
    """
    return {name: tf.TensorSpec([d if isinstance(d, int) else None for d in dims.shape],
                                dims.dtype, name=name)
            for name, dims in dims_by_name.items()}


def zeros(dims_by_name, where="init_states"):
    """Zero tensors for dict name -> StateDims.

    Raises:
        ValueError: naming a state with an unknown (None) dim.
    """
    states = {}
    for name, dims in dims_by_name.items():
        if any(d is None for d in dims.shape):
            raise ValueError(
                f"{where}: state {name!r} has unknown dims {dims.shape}; pass a full "
                "video_shape [B, T, H, W, 3].")
        states[name] = tf.zeros(dims.shape, dims.dtype)
    return states


def state_name(prefix, suffix):
    """Joins a layer's state prefix and a state's own name."""
    return f"{prefix}_{suffix}"


def take_state(states, name):
    """Returns ``states[name]``, or None for a fresh clip (``states is None``).

    Raises:
        ValueError: if a state dict was given but lacks `name`. A partial dict is
            never silently completed with zeros.
    """
    if states is None:
        return None
    if name not in states:
        raise ValueError(
            f"Missing state {name!r}. Pass every state returned by "
            "model.init_states(...) (or by the previous call), or none at all "
            "for a fresh clip.")
    return states[name]


def frame_count_as(frame_count, dtype):
    """Turns a ``(1,)`` int frame count into a ``[1, 1, 1, 1, 1]`` float tensor."""
    return tf.reshape(tf.cast(frame_count, dtype), [1, 1, 1, 1, 1])


def check_states(states, specs, where="model"):
    """Validates a state dict against the expected specs.

    Args:
        states: dict name -> tensor given by the caller.
        specs: dict name -> tf.TensorSpec expected (dims may be None).
        where: what is being called, for the message.

    Raises:
        ValueError: naming a missing, unexpected or wrong-shape state.
        TypeError: naming a state with the wrong dtype.
    """
    missing = sorted(set(specs) - set(states))
    extra = sorted(set(states) - set(specs))
    if missing:
        raise ValueError(
            f"{where}: missing state(s) {missing[:5]}{' ...' if len(missing) > 5 else ''} "
            f"({len(missing)} of {len(specs)} missing). Start a stream with "
            "model.init_states(video_shape) and pass back the states each call returns.")
    if extra:
        raise ValueError(
            f"{where}: unexpected input(s) {extra[:5]}; a stream model takes 'image' "
            f"plus exactly these {len(specs)} states: see model.state_specs(video_shape).")
    for name, spec in specs.items():
        value = states[name]
        shape = tf.TensorShape(getattr(value, "shape", None))
        if shape.rank is not None and spec.shape.rank is not None:
            ok = shape.rank == spec.shape.rank and all(
                a is None or b is None or a == b
                for a, b in zip(shape.as_list(), spec.shape.as_list()))
            if not ok:
                raise ValueError(
                    f"{where}: state {name!r} has shape {tuple(shape.as_list())}, "
                    f"expected {tuple(spec.shape.as_list())}.")
        dtype = getattr(value, "dtype", None)
        if dtype is not None and tf.as_dtype(dtype).is_integer != spec.dtype.is_integer:
            raise TypeError(
                f"{where}: state {name!r} has dtype {tf.as_dtype(dtype).name}, "
                f"expected {spec.dtype.name}.")
