"""The cost of an architecture: multiply-adds per frame, or measured TFLite latency.

`spec_macs` is an analytic formula for exactly what `movinet_tf.count_flops`
counts on a built model (convolutions and dense layers, as multiply-adds); a
test checks that the two agree on random points of the space. It needs no
model, so the search can price thousands of sampled architectures.

`TfliteLatency` measures the single-frame streaming TFLite model on this
machine's CPU; it builds and converts each architecture, so it is slow (seconds
per new architecture) and is cached by spec.
"""
import time

import numpy as np
from absl import logging

from movinet_tf.layers.attention import se_hidden_filters
from movinet_tf.models import specs as specs_lib

COST_KINDS = ("flops", "tflite_latency")


def _ceil_div(value, divisor):
    return -(-value // divisor)


def spec_macs(spec, video_shape, conv_type="2plus1d", se_type="2plus3d", causal=True,
              num_classes=600):
    """Multiply-adds of one call of the model built from `spec`.

    Equals ``count_flops(build_model(..., block_specs=spec, ...), video_shape)``
    for the same settings.

    Args:
        spec: a `ModelSpec` or spec string.
        video_shape: [B, T, H, W, 3] of one call; [1, 1, H, W, 3] is the per-frame
            cost of a stream model.
        conv_type: '3d', '2plus1d' or '3d_2plus1d'.
        se_type: '3d', '2d', '2plus3d' or 'none'.
        causal: whether the model is causal (changes the SE's pooled length).
        num_classes: classifier outputs.

    Returns:
        int multiply-adds.
    """
    if isinstance(spec, str):
        spec = specs_lib.parse_spec(spec)
    batch, frames, height, width = (int(d) for d in video_shape[:4])
    height, width = _ceil_div(height, 2), _ceil_div(width, 2)
    positions = batch * frames
    total = positions * height * width * spec.stem_filters * 9 * 3
    channels = spec.stem_filters
    for block in spec.blocks:
        for layer in block.layers:
            expand, out = layer.expand_filters, block.out_filters
            kt, kh, kw = layer.kernel_size
            total += positions * height * width * expand * channels
            height = _ceil_div(height, layer.spatial_stride)
            width = _ceil_div(width, layer.spatial_stride)
            pixels = positions * height * width
            if conv_type != "3d" and kt > 1:
                total += pixels * expand * (kh * kw + kt)
            else:
                total += pixels * expand * kt * kh * kw
            if se_type != "none":
                hidden = se_hidden_filters(expand, se_type)
                pooled = 2 * expand if se_type == "2plus3d" else expand
                se_positions = batch if (se_type == "3d" and not causal) else positions
                total += se_positions * hidden * (pooled + expand)
            total += pixels * out * expand
            if channels != out or layer.spatial_stride != 1:
                total += pixels * out * channels
            channels = out
    total += positions * height * width * spec.head_filters * channels
    total += batch * spec.classifier_filters * (spec.head_filters + num_classes)
    return int(total)


class FlopsCost:
    """Multiply-adds per frame of the stream model (the paper's cost), cached by spec.

    Args:
        frame_size: H = W of a frame.
        model_settings: dict with conv_type, se_type, causal, num_classes.
    """
    unit = "MMACs/frame"

    def __init__(self, frame_size, model_settings):
        self.frame_size = int(frame_size)
        self.settings = dict(model_settings)
        self._cache = {}

    def __call__(self, spec):
        text = spec if isinstance(spec, str) else specs_lib.format_spec(spec)
        if text not in self._cache:
            macs = spec_macs(text, [1, 1, self.frame_size, self.frame_size, 3], **self.settings)
            self._cache[text] = macs / 1e6
        return self._cache[text]


class TfliteLatency:
    """Median single-frame latency (ms) of the streaming TFLite model, cached by spec.

    Each new architecture is built (random weights), exported by
    `movinet_tf.export_lib.export_tflite` (the file an app would ship) and timed
    with the LiteRT interpreter on one thread.

    Args:
        frame_size: H = W of a frame.
        build_fn: spec string -> built stream `MovinetClassifier`.
        runs: timed runs after 3 warm-up runs.
    """
    unit = "ms/frame"

    def __init__(self, frame_size, build_fn, runs=20):
        self.frame_size = int(frame_size)
        self.build_fn = build_fn
        self.runs = int(runs)
        self._cache = {}

    def __call__(self, spec):
        text = spec if isinstance(spec, str) else specs_lib.format_spec(spec)
        if text not in self._cache:
            self._cache[text] = self._measure(text)
        return self._cache[text]

    def _measure(self, text):
        import tempfile

        from movinet_tf.export_lib import TFLiteStreamer, export_tflite

        model = self.build_fn(text)
        if not model.is_stream:
            raise ValueError("TFLite latency is measured on a stream model; set model.stream=true.")
        shape = [1, 1, self.frame_size, self.frame_size, 3]
        # The file a deployment would ship: the project's exporter (folded BN, 4-D graph).
        with tempfile.TemporaryDirectory(prefix="movinet_nas_latency_") as work:
            exported = export_tflite(model, f"{work}/candidate.tflite",
                                     image_size=self.frame_size)
            streamer = TFLiteStreamer(exported.model_path, num_threads=1)
        # The stream CLI's own loop: tensors bound once, states carried in place.
        image = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
        for _ in range(3):
            streamer.advance(image)
        times = []
        for _ in range(self.runs):
            start = time.perf_counter()
            streamer.advance(image)
            times.append((time.perf_counter() - start) * 1e3)
        latency = float(np.median(times))
        logging.info("TFLite latency %.3f ms for a new architecture.", latency)
        return latency
