"""Shared test helpers: weight randomisation, layer round trips, stream-vs-clip checks."""
import importlib
import inspect
import os
import pkgutil

import keras
import numpy as np
import tensorflow as tf

from movinet_tf.export_lib.tflite_model import zero_states


def randomize_weights(model_or_layer, seed=0, gain=1.5):
    """Sets every weight to random values, so no layer starts as zero or identity.

    ReZero and positional-encoding scales start at 0 and BatchNorm at the
    identity; an equivalence test on such weights would skip whole branches.
    Kernels get N(0, gain / sqrt(fan_in)), scalar scales U(0.2, 0.6), biases and
    BN offsets small normals, BN moving variances stay positive.
    """
    rng = np.random.default_rng(seed)
    for weight in model_or_layer.weights:
        shape = tuple(weight.shape)
        path = weight.path
        if "moving_variance" in path:
            value = rng.uniform(0.5, 1.5, shape)
        elif "moving_mean" in path or "beta" in path:
            value = rng.normal(0.0, 0.1, shape)
        elif "gamma" in path:
            value = rng.uniform(0.7, 1.3, shape)
        elif len(shape) == 0:
            value = rng.uniform(0.2, 0.6, shape)
        elif len(shape) == 1:
            value = rng.normal(0.0, 0.2, shape)
        else:
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0.0, gain / np.sqrt(max(fan_in, 1)), shape)
        weight.assign(value.astype(weight.dtype))
    return model_or_layer


def random_video(shape, seed=0):
    """A random float video in [0, 1] whose frames really differ over time.

    Pixel noise plus a per-frame brightness and colour drift: i.i.d. noise
    alone has nearly equal frame means, which would hide bugs in temporal
    pooling (a cumulative mean would look like a per-frame mean).
    """
    rng = np.random.default_rng(seed)
    batch, frames = shape[0], shape[1]
    noise = rng.uniform(0.0, 1.0, shape)
    drift = rng.uniform(-0.4, 0.4, (batch, frames, 1, 1, shape[-1]))
    return np.clip(0.5 * noise + 0.25 + drift, 0.0, 1.0).astype(np.float32)


def random_splits(total, rng, max_pieces=None):
    """Random sizes >= 1 that add up to `total`."""
    cuts = sorted(rng.choice(np.arange(1, total), size=rng.integers(1, total), replace=False)) \
        if total > 1 else []
    edges = [0] + list(cuts) + [total]
    return [b - a for a, b in zip(edges[:-1], edges[1:])]


def stream(model, video, sizes):
    """Streams `video` through a stream model in chunks of `sizes` frames."""
    states = model.init_states(video.shape)
    start = 0
    logits = None
    for size in sizes:
        logits, states = model({**states, "image": video[:, start:start + size]})
        start += size
    return logits, states


def stream_per_frame(step, clip, states):
    """Feeds `clip` to `step` one frame at a time; returns (logits [T, N] float32, states).

    The tests' one frame loop, for any single-frame model: a Keras stream model
    (`keras_step`), a folded `FrameGraph` (`frame_graph_step`) or a LiteRT
    signature runner (`runner_step`).

    Args:
        step: fn(frame [H, W, C], states) -> (logits, new states); the logits
            are flattened, so [1, N] and [N] both work.
        clip: [T, H, W, C] or [1, T, H, W, C] (numpy; any dtype, passed as is).
        states: the states before the first frame (e.g. zeros).
    """
    clip = np.asarray(clip)
    if clip.ndim == 5:
        assert clip.shape[0] == 1, f"one clip at a time, got a batch of {clip.shape[0]}"
        clip = clip[0]
    logits = []
    for frame in clip:
        out, states = step(frame, states)
        logits.append(np.asarray(out, np.float32).reshape(-1))
    return np.stack(logits), states


def keras_step(model):
    """A Keras stream model's call as a `stream_per_frame` step (states from
    ``model.init_states([1, 1, H, W, 3])``)."""
    return lambda frame, states: model({**states, "image": frame[None, None]})


def frame_graph_step(graph):
    """A `FrameGraph` as a `stream_per_frame` step, traced once (states from
    ``graph.init_states("frame")``)."""
    call = tf.function(graph.__call__, autograph=False)
    return lambda frame, states: call(tf.constant(frame[None]), states)


def runner_step(runner):
    """A LiteRT signature runner (or `CompiledRunner`) as a `stream_per_frame` step:
    each frame is reshaped to the image input, every other output is a state."""
    image_shape = runner.get_input_details()["image"]["shape"]

    def step(frame, states):
        outputs = dict(runner(image=frame.reshape(image_shape), **states))
        return outputs.pop("logits"), outputs

    return step


def runner_zero_states(runner):
    """Zero states for every input of a LiteRT signature runner but the image (an integer
    state at its zero point)."""
    return zero_states(runner.get_input_details())


def _stream_layer(layer, video, sizes):
    """Streams `video` through a stateful layer; returns (chunk outputs, final states)."""
    states, outputs, start = None, [], 0
    for size in sizes:
        out, states = layer(video[:, start:start + size], states=states)
        outputs.append(np.asarray(out))
        start += size
    return outputs, states


def check_stream_equals_clip(target, video, seeds=(0, 1), atol=1e-5):
    """Asserts frame-by-frame and random-split streaming equal the whole clip.

    Args:
        target: a stream model (``model({**states, "image": frames})``) or a
            stateful layer (``layer(frames, states=...)`` returning
            ``(outputs, states)``), with randomised weights.
        video: [B, T, H, W, C], e.g. from `random_video`.
        seeds: one random split into sub-clips per seed, besides frame by frame.
        atol: absolute tolerance (float32: 1e-5).

    For a layer whose output keeps the time axis the chunk outputs, joined,
    must equal the clip's; for one that pools time away (the head pool) the
    last chunk's output must. Returns the whole-clip output.
    """
    frames = video.shape[1]
    splits = [[1] * frames] + [random_splits(frames, np.random.default_rng(s)) for s in seeds]
    if hasattr(target, "init_states"):
        clip = np.asarray(target(video, training=False))
        for sizes in splits:
            logits, _ = stream(target, video, sizes)
            np.testing.assert_allclose(np.asarray(logits), clip, atol=atol, rtol=0,
                                       err_msg=f"stream split {sizes} differs from the whole clip")
        return clip
    clip, clip_states = target(video)
    clip = np.asarray(clip)
    assert clip_states, f"{target.name} returned no states: nothing is streamed"
    for sizes in splits:
        outputs, states = _stream_layer(target, video, sizes)
        got = np.concatenate(outputs, axis=1) if clip.shape[1] == frames else outputs[-1]
        np.testing.assert_allclose(got, clip, atol=atol, rtol=0,
                                   err_msg=f"stream split {sizes} differs from the whole clip")
        for name in clip_states:  # The states after the stream equal those after the clip.
            np.testing.assert_allclose(np.asarray(states[name]), np.asarray(clip_states[name]),
                                       atol=atol, rtol=0, err_msg=f"state {name}, split {sizes}")
    return clip


class _Host(keras.Model):
    """Wraps one layer for a .keras round trip."""

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer

    def call(self, inputs):
        return self.layer(inputs)

    def get_config(self):
        return {"layer": keras.saving.serialize_keras_object(self.layer), "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["layer"]), name=config["name"])


keras.saving.register_keras_serializable(package="movinet_tf_tests")(_Host)


def _outputs(value):
    """A layer's result as a list of arrays: the output, then its states by name."""
    if isinstance(value, tuple):
        out, states = value
        return [np.asarray(out)] + [np.asarray(states[k]) for k in sorted(states)]
    return [np.asarray(value)]


def check_layer(layer, inputs, tmp_path, call=None, seed=0):
    """Randomised weights, then the config and `.keras` round trips give equal outputs.

    1. Every weight is randomised (`randomize_weights`), so no branch hides
       behind a zero ReZero scale or an identity BatchNorm.
    2. ``from_config(get_config())`` gives the same config and, with the
       weights copied over, the same outputs (and states).
    3. After a `.keras` save and reload the outputs (and states) are equal.

    Args:
        layer: a built layer.
        inputs: a numpy input.
        call: fn(layer, inputs) -> output (default: ``layer(inputs)``); a tuple
            ``(outputs, states)`` is compared element by element.
        seed: of the random weights.

    Returns:
        The reloaded layer.
    """
    call = call or (lambda l, x: l(x))
    randomize_weights(layer, seed=seed)
    expected = _outputs(call(layer, inputs))
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config, f"{type(layer).__name__}: config changes on a round trip"
    clone.build(inputs.shape)
    assert [w.path.split("/", 1)[-1] for w in clone.weights] == \
        [w.path.split("/", 1)[-1] for w in layer.weights]
    clone.set_weights(layer.get_weights())
    for got, want in zip(_outputs(call(clone, inputs)), expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    host = _Host(layer)
    host.call = lambda x: _first(call(host.layer, x))
    path = os.path.join(str(tmp_path), f"{type(layer).__name__}.keras")
    host.build(inputs.shape)
    host.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layer) is type(layer)
    for got, want in zip(_outputs(call(loaded.layer, inputs)), expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    return loaded.layer


def registered_classes(package):
    """Every class defined under `package` that is registered for Keras serialization."""
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            name = keras.saving.get_registered_name(cls)
            if keras.saving.get_registered_object(name) is cls and name.startswith("movinet_tf>"):
                found[cls.__name__] = cls
    return found


def _first(value):
    return value[0] if isinstance(value, tuple) else value
