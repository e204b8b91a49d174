"""Compound scaling: grow (or shrink) a base architecture to a cost target.

The paper grew the searched base model into A0-A5 by a random search over four
coefficients around it, as in EfficientNet/X3D: depth (layers per block),
width (every channel count), resolution (frame size) and frame rate (frames per
clip of the same duration), keeping the candidates whose cost lands near each
GFLOPs target and picking the best of them by accuracy.

* `scale_spec` applies depth and width to a `ModelSpec`.
* `random_scaling_search` samples coefficients (log-uniform in given ranges;
  a range with equal ends fixes a coefficient), prices every candidate with
  `cost.spec_macs` on its own input shape, keeps those within `tolerance` of
  the target and, if an `evaluate` function is given, ranks them by it.
"""
import dataclasses
import math

import numpy as np

from movinet_tf.models import specs as specs_lib
from movinet_tf.nas.cost import spec_macs
from movinet_tf.nas.space import UNSTRIDED_BLOCKS, round8

DEFAULT_RANGES = {"depth": (0.5, 3.0), "width": (0.5, 2.0), "resolution": (0.5, 2.0),
                  "frame_rate": (0.5, 2.0)}


def scale_spec(spec, depth=1.0, width=1.0, scale_classifier=False):
    """Scales the depth and width of an architecture.

    Args:
        spec: a `ModelSpec` or spec string.
        depth: multiplies each block's number of layers (rounded up, at least 1).
            New layers repeat the block's non-downsampling layers in order (the
            first layer, if it is the only one, without its stride).
        width: multiplies every width (stem, blocks, expansions, head), rounded
            to multiples of 8.
        scale_classifier: also scale the classifier's hidden width (the paper
            keeps it at 2048; tiny models would be dominated by it).

    Returns:
        The scaled `ModelSpec`.

    Raises:
        ValueError: for non-positive coefficients.
    """
    if depth <= 0 or width <= 0:
        raise ValueError(f"depth and width must be > 0, got depth={depth}, width={width}.")
    if isinstance(spec, str):
        spec = specs_lib.parse_spec(spec)
    blocks = []
    for b, block in enumerate(spec.blocks):
        count = max(1, math.ceil(len(block.layers) * depth - 1e-9))
        pattern = block.layers[1:] or (dataclasses.replace(block.layers[0], spatial_stride=1),)
        layers = list(block.layers[:count])
        while len(layers) < count:
            layers.append(pattern[(len(layers) - len(block.layers)) % len(pattern)])
        first_stride = 1 if b in UNSTRIDED_BLOCKS else block.layers[0].spatial_stride
        layers[0] = dataclasses.replace(layers[0], spatial_stride=first_stride)
        layers = tuple(dataclasses.replace(l, expand_filters=round8(l.expand_filters * width))
                       for l in layers)
        blocks.append(specs_lib.BlockSpec(round8(block.out_filters * width), layers))
    classifier = (round8(spec.classifier_filters * width) if scale_classifier
                  else spec.classifier_filters)
    return specs_lib.ModelSpec(round8(spec.stem_filters * width), tuple(blocks),
                               round8(spec.head_filters * width), classifier)


def scaled_input(frames, size, resolution=1.0, frame_rate=1.0):
    """(frames, size) of a clip after resolution and frame-rate scaling.

    The size is rounded to a multiple of 8 (at least 16); the clip keeps its
    duration, so the frame count scales with the frame rate (at least 1).
    """
    return max(1, int(round(frames * frame_rate))), max(16, int(round(size * resolution / 8)) * 8)


def random_scaling_search(base_spec, base_frames, base_size, target_macs, num_samples=200,
                          ranges=None, tolerance=0.1, seed=0, model_settings=None,
                          scale_classifier=False, evaluate=None, num_evaluate=3):
    """Random search for scaling coefficients that meet a cost target.

    Args:
        base_spec: the architecture to scale (`ModelSpec` or spec string).
        base_frames, base_size: its clip (frames, H = W).
        target_macs: the target multiply-adds of one clip.
        num_samples: coefficient tuples to draw.
        ranges: dict name -> (low, high) for 'depth', 'width', 'resolution',
            'frame_rate'; missing names use `DEFAULT_RANGES`, equal ends fix one.
        tolerance: keep candidates with ``|cost / target - 1| <= tolerance``.
        seed: numpy seed.
        model_settings: `spec_macs` keyword arguments (conv_type, se_type,
            causal, num_classes).
        scale_classifier: see `scale_spec`.
        evaluate: optional callable(candidate dict) -> quality (e.g. a short
            training run); the best of the `num_evaluate` candidates closest to
            the target is returned first.
        num_evaluate: how many candidates to evaluate.

    Returns:
        list of candidate dicts (coefficients, 'spec' text, 'frames', 'size',
        'macs', 'quality' when evaluated), best first: by quality when
        evaluated, else by closeness to the target. Empty if none is within
        tolerance.

    Raises:
        ValueError: for an unknown range name or a bad range.
    """
    ranges = dict(DEFAULT_RANGES, **(ranges or {}))
    unknown = set(ranges) - set(DEFAULT_RANGES)
    if unknown:
        raise ValueError(f"Unknown scaling coefficient(s) {sorted(unknown)}; expected "
                         f"{sorted(DEFAULT_RANGES)}.")
    for name, (low, high) in ranges.items():
        if not 0 < low <= high:
            raise ValueError(f"Range of {name!r} must satisfy 0 < low <= high, got {(low, high)}.")
    if target_macs <= 0:
        raise ValueError(f"target_macs must be > 0, got {target_macs}.")
    settings = dict(conv_type="2plus1d", se_type="2plus3d", causal=True, num_classes=600)
    settings.update(model_settings or {})
    rng = np.random.default_rng(seed)
    seen, candidates = set(), []
    for _ in range(num_samples):
        coefficients = {name: float(np.exp(rng.uniform(np.log(low), np.log(high))))
                        for name, (low, high) in sorted(ranges.items())}
        spec = scale_spec(base_spec, coefficients["depth"], coefficients["width"],
                          scale_classifier)
        frames, size = scaled_input(base_frames, base_size, coefficients["resolution"],
                                    coefficients["frame_rate"])
        text = specs_lib.format_spec(spec)
        if (text, frames, size) in seen:
            continue
        seen.add((text, frames, size))
        macs = spec_macs(spec, [1, frames, size, size, 3], **settings)
        error = abs(macs / target_macs - 1.0)
        if error <= tolerance:
            candidates.append({**coefficients, "spec": text, "frames": frames, "size": size,
                               "macs": macs, "cost_error": error})
    candidates.sort(key=lambda c: c["cost_error"])
    if evaluate is not None and candidates:
        for candidate in candidates[:num_evaluate]:
            candidate["quality"] = float(evaluate(candidate))
        evaluated = sorted(candidates[:num_evaluate], key=lambda c: -c["quality"])
        candidates = evaluated + candidates[num_evaluate:]
    return candidates
