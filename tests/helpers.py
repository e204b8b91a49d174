"""Shared test helpers: weight randomisation, layer round trips, stream-vs-clip checks."""
import os

import keras
import numpy as np


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


def check_stream_equals_clip(model, video, seeds=(0, 1), atol=1e-5):
    """Asserts frame-by-frame and random-split streaming equal the whole clip."""
    clip_logits = model(video, training=False).numpy()
    frames = video.shape[1]
    splits = [[1] * frames] + [random_splits(frames, np.random.default_rng(s)) for s in seeds]
    for sizes in splits:
        logits, _ = stream(model, video, sizes)
        np.testing.assert_allclose(logits.numpy(), clip_logits, atol=atol, rtol=0,
                                   err_msg=f"stream split {sizes} differs from the whole clip")
    return clip_logits


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


def check_layer(layer, inputs, tmp_path, call=None):
    """Config round trip, then equal outputs after a .keras save and reload.

    Args:
        layer: a built layer with randomised weights.
        inputs: a numpy input.
        call: fn(layer, inputs) -> output tensor (default: layer(inputs), first
            element if a tuple).
    """
    call = call or (lambda l, x: _first(l(x)))
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    host = _Host(layer)
    host.call = lambda x: call(host.layer, x)
    expected = np.asarray(call(layer, inputs))
    path = os.path.join(str(tmp_path), "layer.keras")
    host.build(inputs.shape)
    host.save(path)
    loaded = keras.saving.load_model(path)
    got = np.asarray(call(loaded.layer, inputs))
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    return loaded.layer


def _first(value):
    return value[0] if isinstance(value, tuple) else value
