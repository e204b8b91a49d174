"""Spatial preprocessing of clips: train augmentation and eval resize + crop.

Every function takes frames `[T, H, W, 3]` (uint8 or float) and applies the same
geometry to every frame of the clip. Outputs are float32 RGB in [0, 1].

* Train: a random crop of area share ``[crop_area_min, crop_area_max]`` and
  width/height ratio ``[crop_aspect_min, crop_aspect_max]`` (one box for the
  whole clip), resized to ``image_size x image_size``, then a random horizontal
  flip.
* Eval: resize so the short side is `min_image_size` (bilinear, keeping the
  aspect ratio, the long side rounded to the nearest pixel), then crop
  ``image_size x image_size`` from the centre, or from the left, centre and right
  (top, centre, bottom for portrait video) with three crops.
"""
import numpy as np
import tensorflow as tf


def _to_unit_float(frames):
    """uint8 [0, 255] -> float32 [0, 1]; floats are assumed to be in [0, 1] already."""
    if frames.dtype == tf.uint8:
        return tf.cast(frames, tf.float32) / 255.0
    return tf.cast(frames, tf.float32)


def _resize(frames, height, width):
    """Bilinear resize of `[T, H, W, 3]` (any dtype) to float32 in the input's value range."""
    return tf.image.resize(tf.cast(frames, tf.float32), [height, width], method="bilinear")


def random_crop_resize(frames, seed, image_size, area_range=(0.08, 1.0),
                       aspect_range=(0.5, 2.0)):
    """Crops one random box out of every frame and resizes it to a square.

    Args:
        frames: `[T, H, W, 3]`, uint8 or float in [0, 1].
        seed: int `[2]` stateless seed.
        image_size: output side length.
        area_range: (min, max) share of the frame area the box covers.
        aspect_range: (min, max) width/height ratio of the box.

    Returns:
        float32 `[T, image_size, image_size, 3]` in [0, 1].
    """
    frame_shape = tf.shape(frames)[1:4]
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        frame_shape, bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
        min_object_covered=0.0, aspect_ratio_range=aspect_range, area_range=area_range,
        max_attempts=100, use_image_if_no_bounding_boxes=True)
    cropped = frames[:, begin[0]:begin[0] + size[0], begin[1]:begin[1] + size[1], :]
    resized = _resize(_to_unit_float(cropped), image_size, image_size)
    return tf.clip_by_value(resized, 0.0, 1.0)


def random_flip(frames, seed):
    """Flips the whole clip left-right with probability 1/2.

    Args:
        frames: `[T, H, W, C]`.
        seed: int `[2]` stateless seed.

    Returns:
        `(frames, flipped)`: the clip and a bool scalar saying whether it was flipped.
    """
    flipped = tf.random.stateless_uniform([], seed) < 0.5
    frames = tf.cond(flipped, lambda: tf.reverse(frames, axis=[2]), lambda: frames)
    return frames, flipped


def short_side_size(height, width, min_image_size):
    """(new_height, new_width) with the short side `min_image_size`, int32 scalars."""
    height = tf.cast(height, tf.int64)
    width = tf.cast(width, tf.int64)
    short = tf.minimum(height, width)
    size = tf.constant(min_image_size, tf.int64)
    # Round half up in integers so TF and the numpy/Java ports agree exactly.
    new_height = tf.where(height <= width, size, (height * size + short // 2) // short)
    new_width = tf.where(height <= width, (width * size + short // 2) // short, size)
    return tf.cast(new_height, tf.int32), tf.cast(new_width, tf.int32)


def resize_short_side(frames, min_image_size):
    """Resizes `[T, H, W, 3]` so its short side is `min_image_size`; float32 [0, 1]."""
    shape = tf.shape(frames)
    new_height, new_width = short_side_size(shape[1], shape[2], min_image_size)
    return tf.clip_by_value(_resize(_to_unit_float(frames), new_height, new_width), 0.0, 1.0)


def eval_crops(frames, image_size, min_image_size, num_crops=1):
    """Eval views of one clip: short-side resize, then 1 or 3 square crops.

    Args:
        frames: `[T, H, W, 3]`, uint8 or float in [0, 1].
        image_size: crop side length.
        min_image_size: short side after resizing (>= image_size).
        num_crops: 1 (centre) or 3 (start, centre, end of the long side).

    Returns:
        float32 `[num_crops, T, image_size, image_size, 3]` in [0, 1].
    """
    if num_crops not in (1, 3):
        raise ValueError(f"num_crops is {num_crops!r}; expected 1 or 3.")
    if min_image_size < image_size:
        raise ValueError(f"min_image_size ({min_image_size}) must be >= image_size "
                         f"({image_size}).")
    resized = resize_short_side(frames, min_image_size)
    shape = tf.shape(resized)
    height, width = shape[1], shape[2]
    center_y = (height - image_size) // 2
    center_x = (width - image_size) // 2
    if num_crops == 1:
        offsets = [(center_y, center_x)]
    else:
        landscape = width >= height
        zero = tf.constant(0, tf.int32)
        end_y = tf.where(landscape, center_y, height - image_size)
        end_x = tf.where(landscape, width - image_size, center_x)
        start_y = tf.where(landscape, center_y, zero)
        start_x = tf.where(landscape, zero, center_x)
        offsets = [(start_y, start_x), (center_y, center_x), (end_y, end_x)]
    crops = [resized[:, y:y + image_size, x:x + image_size, :] for y, x in offsets]
    out = tf.stack(crops)
    static_frames = frames.shape[0]
    return tf.ensure_shape(out, [num_crops, static_frames, image_size, image_size, 3])


def preprocess_eval_frames(frames_uint8, image_size, min_image_size):
    """The eval preprocessing as one call: resize the short side, centre crop, scale.

    This is exactly what evaluation feeds the model, for reuse by the streaming
    CLI and the on-device parity tests.

    Args:
        frames_uint8: uint8 RGB frames `[T, H, W, 3]` or one frame `[H, W, 3]`
            (numpy array or tensor).
        image_size: output side length.
        min_image_size: short side after resizing (>= image_size).

    Returns:
        float32 numpy array `[T, image_size, image_size, 3]` (or
        `[image_size, image_size, 3]` for one frame) in [0, 1].

    Raises:
        TypeError: if the frames are not uint8.
        ValueError: if their shape is not `[T, H, W, 3]` / `[H, W, 3]`, or
            min_image_size < image_size.
    """
    frames = tf.convert_to_tensor(frames_uint8)
    if frames.dtype != tf.uint8:
        raise TypeError(f"frames_uint8 must be uint8 RGB; got dtype {frames.dtype.name}.")
    single = frames.shape.rank == 3
    if single:
        frames = frames[None]
    if frames.shape.rank != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames_uint8 must be [T, H, W, 3] or [H, W, 3]; got shape "
                         f"{tuple(tf.convert_to_tensor(frames_uint8).shape)}.")
    out = eval_crops(frames, image_size, min_image_size, num_crops=1)[0]
    out = np.asarray(out)
    return out[0] if single else out
