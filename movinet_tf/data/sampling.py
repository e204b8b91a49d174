"""Which source frames make up a clip: strides, random strides, offsets, multi-clip.

A clip of T frames at stride s covers ``span = (T - 1) * s + 1`` source frames
and reads frames ``start, start + s, ..., start + (T - 1) * s``.

* Training: `start` is uniform over ``[0, max(N - span, 0)]``, and with a random
  stride range r > 0 the stride is uniform over ``[max(s - r, 1), s + r)``.
* Evaluation with K clips: clip k starts at ``round(k * max(N - span, 0) / (K - 1))``
  (the first clip starts at frame 0, the last ends at the last frame); a single
  clip is the central one, starting at ``max(N - span, 0) // 2``.
* A video shorter than the span is **looped**: frame indices are taken modulo N,
  so a 10-frame video read as 16 frames at stride 1 gives 0..9, 0..5.

All functions are TF ops so they run inside tf.data maps.
"""
import tensorflow as tf


def clip_span(num_frames, stride):
    """Number of source frames a clip covers (scalar, same type as inputs)."""
    return (num_frames - 1) * stride + 1


def clip_indices(num_available, num_frames, stride, start):
    """Source frame indices of one clip, looping when the video is too short.

    Args:
        num_available: int32 scalar N >= 1, frames in the video.
        num_frames: T, frames in the clip.
        stride: int32 scalar >= 1.
        start: int32 scalar, first frame.

    Returns:
        int32 `[T]`, each in ``[0, N)``.
    """
    steps = tf.range(num_frames, dtype=tf.int32)
    return tf.math.floormod(start + steps * stride, num_available)


def sample_train_stride(seed, temporal_stride, random_stride_range):
    """The stride of one training clip (int32 scalar), drawn with a stateless `seed`."""
    if random_stride_range <= 0:
        return tf.constant(temporal_stride, tf.int32)
    low = max(temporal_stride - random_stride_range, 1)
    high = temporal_stride + random_stride_range
    return tf.random.stateless_uniform([], seed, minval=low, maxval=high, dtype=tf.int32)


def sample_train_indices(seed, num_available, num_frames, temporal_stride, random_stride_range):
    """Frame indices of one random training clip.

    Args:
        seed: int32/int64 `[2]` stateless seed.
        num_available: int32 scalar N >= 1.
        num_frames: T.
        temporal_stride: the base stride s.
        random_stride_range: r; 0 keeps the stride fixed.

    Returns:
        int32 `[T]`.
    """
    stride_seed, start_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=2))
    stride = sample_train_stride(stride_seed, temporal_stride, random_stride_range)
    max_start = tf.maximum(num_available - clip_span(num_frames, stride), 0)
    start = tf.random.stateless_uniform([], start_seed, minval=0, maxval=max_start + 1,
                                        dtype=tf.int32)
    return clip_indices(num_available, num_frames, stride, start)


def eval_clip_starts(num_available, num_frames, stride, num_clips):
    """First frames of `num_clips` evenly spaced evaluation clips, int32 `[K]`."""
    max_start = tf.maximum(num_available - clip_span(num_frames, stride), 0)
    if num_clips == 1:
        return tf.reshape(max_start // 2, [1])
    fractions = tf.linspace(0.0, 1.0, num_clips)
    return tf.cast(tf.round(fractions * tf.cast(max_start, tf.float32)), tf.int32)


def eval_indices(num_available, num_frames, stride, num_clips):
    """Frame indices of all evaluation clips of a video, int32 `[K, T]`."""
    starts = eval_clip_starts(num_available, num_frames, stride, num_clips)
    steps = tf.range(num_frames, dtype=tf.int32)
    return tf.math.floormod(starts[:, None] + steps[None, :] * stride, num_available)
