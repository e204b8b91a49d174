"""The functional core of MoViNets: the ops every forward pass is made of.

The Keras layers (clips and streams, 5-D ``[B, T, H, W, C]``), their
single-frame folded steps (4-D ``[1, H, W, C]``, what the TFLite export runs)
and the NAS supernet (sliced weights) all compute with these functions, so a
convolution, a running mean or a positional encoding is written once.

* `conv_frames`, `conv_time`, `pad_time`: convolutions as 2D ops over frames
  (no XLA, every op a TFLite builtin), a temporal kernel as a sum over its taps.
* `buffer_concat`: a stream buffer in front of a clip, and the next buffer, with
  a gradient that costs one slice of the clip (sub-clip training).
* `cumulative_mean`, `running_mean_step`: the means over time of CGAP, for a
  clip and for one frame.
* `sinusoid_angles`, `sinusoid_encoding`: the positional encoding.
* `average_pool_3x3`, `window_mean_3x3`: the skip path's pool, for clips and
  as XNNPACK runs it in int8 for one frame.
* `count_macs`: multiply-add counting of the convolutions, as a context manager.
"""
import contextlib

import numpy as np
import tensorflow as tf
# Whether a gradient tape is recording (also while a tf.function is traced under
# one). TensorFlow has no public form of this check.
from tensorflow.python.eager import record as _record

# Name scope of the ops that an int8 export keeps in float32 (see
# `export_lib.tflite_export`): the single-frame running means, their 1 / (n + 1)
# weights and the positional encoding.
FLOAT_SCOPE = "float_island"

MAC_KINDS = ("conv", "depthwise")


def dims(x):
    """The shape of `x` as a list: Python ints where static, scalar tensors elsewhere."""
    static = x.shape.as_list()
    if None not in static:
        return static
    dynamic = tf.shape(x)
    return [d if d is not None else dynamic[i] for i, d in enumerate(static)]


class MacCount:
    """Multiply-adds recorded while a `count_macs` block is active."""

    def __init__(self):
        self.entries = []  # (kind, multiply-adds), one per convolution traced

    def by_kind(self):
        """dict kind -> multiply-adds, for every kind of `MAC_KINDS`."""
        totals = dict.fromkeys(MAC_KINDS, 0)
        for kind, macs in self.entries:
            totals[kind] += macs
        return totals

    @property
    def total(self):
        return int(sum(macs for _, macs in self.entries))


_active_counts = []


@contextlib.contextmanager
def count_macs():
    """Counts the multiply-adds of every convolution computed (or traced) inside.

    Example:
        with ops.count_macs() as macs:
            model(video)
        macs.total, macs.by_kind()

    Counting blocks nest; each sees every convolution of its own block.
    """
    count = MacCount()
    _active_counts.append(count)
    try:
        yield count
    finally:
        _active_counts.remove(count)


def _record_macs(outputs, kernel, depthwise):
    """Adds the multiply-adds of a conv producing `outputs` to the active counts."""
    if not _active_counts:
        return
    if not outputs.shape.is_fully_defined():
        raise ValueError("count_flops needs a fully defined input shape; got an output of "
                         f"shape {outputs.shape}.")
    taps = kernel.shape[0] * kernel.shape[1] * kernel.shape[2]
    per_output = taps * (1 if depthwise else kernel.shape[3])
    kind = "depthwise" if depthwise else "conv"
    for count in _active_counts:
        count.entries.append((kind, outputs.shape.num_elements() * per_output))


def conv_frames(x, kernel, strides_hw, depthwise):
    """Applies a (1, kh, kw) kernel to every frame, TF 'SAME' padding in space.

    Args:
        x: [B, T, H, W, Cin].
        kernel: [1, kh, kw, Cin or 1, Cout].
        strides_hw: (sh, sw).
        depthwise: whether the kernel is depthwise (Cin == Cout, one filter each).

    Returns:
        [B, T, H', W', Cout].
    """
    kh, kw = kernel.shape[1], kernel.shape[2]
    cout = kernel.shape[-1]
    if kh == 1 and kw == 1 and tuple(strides_hw) == (1, 1):
        if depthwise:
            out = x * tf.reshape(kernel, [cout])
        else:
            out = tf.tensordot(x, tf.reshape(kernel, [-1, cout]), axes=1)
        _record_macs(out, kernel, depthwise)
        return out
    shape = dims(x)
    frames = tf.reshape(x, [-1] + shape[2:])
    strides = [1, strides_hw[0], strides_hw[1], 1]
    if depthwise:
        # [1, kh, kw, 1, C] -> [kh, kw, C, 1]: the same memory order.
        filters = tf.reshape(kernel, [kh, kw, cout, 1])
        out = tf.nn.depthwise_conv2d(frames, filters, strides, "SAME")
    else:
        filters = tf.reshape(kernel, [kh, kw, kernel.shape[3], cout])
        out = tf.nn.conv2d(frames, filters, strides, "SAME")
    out = tf.reshape(out, shape[:2] + dims(out)[1:])
    _record_macs(out, kernel, depthwise)
    return out


def conv_time(x, kernel, strides_hw, depthwise, num_out_frames):
    """Valid-in-time convolution as a sum over the kernel's temporal taps.

    Args:
        x: [B, T_out + kt - 1, H, W, Cin], already padded in time (`pad_time`).
        kernel: [kt, kh, kw, Cin or 1, Cout].
        strides_hw: (sh, sw).
        depthwise: whether the kernel is depthwise.
        num_out_frames: T_out (a scalar tensor or int).

    Returns:
        [B, T_out, H', W', Cout].
    """
    kt = kernel.shape[0]
    if kt == 1:
        return conv_frames(x, kernel, strides_hw, depthwise)
    pointwise_in_space = kernel.shape[1] == 1 and kernel.shape[2] == 1
    unstrided = tuple(strides_hw) == (1, 1)
    # `num_out_frames` is a tensor for clips of unknown length (a traced loop over
    # sub-clips): it cannot be compared in Python, and is then taken to be > 1.
    single_frame = isinstance(num_out_frames, int) and num_out_frames == 1
    if depthwise and pointwise_in_space and unstrided and not single_frame:
        # A (kt, 1, 1) depthwise conv over many frames: one depthwise conv over
        # [B, T, H*W, C] beats kt shifted copies. (For one frame, the weighted
        # sum below is cheaper and converts to a few TFLite MUL/ADD ops.)
        shape = dims(x)
        channels = kernel.shape[-1]
        flat = tf.reshape(x, [shape[0], shape[1], -1, channels])
        filters = tf.reshape(kernel, [kt, 1, channels, 1])
        out = tf.nn.depthwise_conv2d(flat, filters, [1, 1, 1, 1], "VALID")
        out = tf.reshape(out, [shape[0], -1] + shape[2:])
        _record_macs(out, kernel, depthwise=True)
        return out
    total = None
    for tap in range(kt):
        window = x[:, tap:tap + num_out_frames]
        term = conv_frames(window, kernel[tap:tap + 1], strides_hw, depthwise)
        total = term if total is None else total + term
    return total


def pad_time(x, kt, causal):
    """Zero-pads [B, T, H, W, C] in time for a kernel of `kt` taps.

    Causal: kt - 1 frames in front (a fresh stream's buffer). Otherwise centred,
    the extra frame of an even kernel at the back.
    """
    if kt == 1:
        return x
    front = kt - 1 if causal else (kt - 1) // 2
    return tf.pad(x, [[0, 0], [front, kt - 1 - front], [0, 0], [0, 0], [0, 0]])


def buffer_concat(buffer, x):
    """``(full, next_buffer)``: ``full = concat([buffer, x])`` in time, and its last k frames.

    `buffer` is [B, k, H, W, C] with a static k, `x` is [B, T, H, W, C]. Without a
    recording tape this is a concat and a slice. Under one (sub-clip training, where
    the next buffer's gradient comes back from the following sub-clip), the gradient
    is custom: TensorFlow's gradient of the slice writes a zero tensor of the whole
    clip's size and adds it to the clip's gradient, and the concat's gradient then
    copies the clip part out again. Here the clip's gradient is one slice of the
    incoming one, with the next buffer's gradient added in place into its last k
    frames (`tf.tensor_scatter_nd_add`). Same values, exactly: the same sums.
    """
    k = buffer.shape[1]
    if k is None:
        raise ValueError(f"buffer_concat needs a static buffer length, got {buffer.shape}.")
    if not _record.could_possibly_record():
        full = tf.concat([buffer, x], axis=1)
        return full, full[:, -k:]
    return _taped_buffer_concat(buffer, x)


@tf.custom_gradient
def _taped_buffer_concat(buffer, x):
    k = buffer.shape[1]
    full = tf.concat([buffer, x], axis=1)

    def grad(d_full, d_next):
        d_buffer, d_x = _buffer_concat_grad(d_full, d_next)
        return tf.ensure_shape(d_buffer, buffer.shape), tf.ensure_shape(d_x, x.shape)

    def _buffer_concat_grad(d_full, d_next):
        if d_full is None:
            d_full = tf.zeros_like(full)
        if d_next is None:
            return d_full[:, :k], d_full[:, k:]
        # The next buffer is frames [T, T + k) of `full`: with T >= k all of them lie
        # in x (frames [T - k, T) of x), otherwise some lie in the old buffer.
        batch = tf.shape(full)[0]
        rows = tf.tile(tf.range(batch)[:, None], [1, k])
        offsets = tf.tile(tf.range(k)[None, :], [batch, 1])
        if x.shape[1] is not None and x.shape[1] >= k:
            d_x = tf.tensor_scatter_nd_add(
                d_full[:, k:], tf.stack([rows, offsets + (tf.shape(x)[1] - k)], axis=-1),
                tf.cast(d_next, d_full.dtype))
            return d_full[:, :k], d_x
        total = tf.tensor_scatter_nd_add(
            d_full, tf.stack([rows, offsets + tf.shape(x)[1]], axis=-1),
            tf.cast(d_next, d_full.dtype))
        return total[:, :k], total[:, k:]

    return (full, full[:, -k:]), grad


def cumulative_mean(frame_means, causal, previous_mean=None, previous_count=None):
    """Means over time of per-frame means [B, T, 1, 1, C].

    Args:
        frame_means: [B, T, 1, 1, C].
        causal: output frame t is the mean of frames 0..t ([B, T, 1, 1, C]);
            otherwise one mean of every frame ([B, 1, 1, 1, C]).
        previous_mean: [B, 1, 1, 1, C], the mean of `previous_count` frames
            seen before (a stream), or None.
        previous_count: [1, 1, 1, 1, 1] float, with `previous_mean`.

    Returns:
        The means, in the dtype of `frame_means`.
    """
    num_frames = dims(frame_means)[1]
    dtype = frame_means.dtype
    if causal:
        if isinstance(num_frames, int) and num_frames == 1:
            sums = frame_means
        else:
            sums = tf.cumsum(frame_means, axis=1)
        seen = tf.reshape(tf.cast(tf.range(1, num_frames + 1), dtype), [1, -1, 1, 1, 1])
    else:
        sums = tf.reduce_sum(frame_means, axis=1, keepdims=True)
        seen = tf.cast(tf.reshape(num_frames, [1, 1, 1, 1, 1]), dtype)
    if previous_mean is not None:
        sums = sums + tf.cast(previous_mean, dtype) * previous_count
        seen = seen + previous_count
    return sums / seen


def running_mean_step(mean, count, frame_mean):
    """One frame of a cumulative mean: mean + (x - mean) / (n + 1), and n + 1.

    Written under the `FLOAT_SCOPE` name scope, which an int8 export keeps in
    float32: a quantized 1 / (n + 1), or a mean requantized every frame, drifts.

    Args:
        mean: [1, 1, 1, C] or (published layout) [1, 1, 1, 1, C].
        count: (1,) int32, the frames the mean is of.
        frame_mean: [1, 1, 1, C].

    Returns:
        (new mean [1, 1, 1, C], new mean in the layout of `mean`, count + 1).
    """
    stored_shape = mean.shape.as_list()
    with tf.name_scope(FLOAT_SCOPE):
        mean = tf.reshape(mean, [1, 1, 1, -1])
        weight = 1.0 / (tf.reshape(tf.cast(count, tf.float32), [1, 1, 1, 1]) + 1.0)
        new_mean = mean + (frame_mean - mean) * weight
        stored = tf.reshape(new_mean, stored_shape)
    return new_mean, stored, count + 1


def sinusoid_angles(channels, max_timescale):
    """Inverse wavelengths, one per (sin, cos) channel pair: numpy [C/2] each half."""
    index = np.arange(channels) // 2
    angles = 1.0 / np.power(float(max_timescale), 2.0 * index / channels)
    return angles[0::2], angles[1::2]


def sinusoid_encoding(positions, channels, max_timescale):
    """The positional encoding of absolute frame positions.

    sin(p * w_k) on the first half of the channels, cos(p * w_k) on the second
    (concatenated, not interleaved), w_k = max_timescale^(-2k / C).

    Args:
        positions: float, shape [..., 1] (or [1]): broadcast against [C/2].
        channels: C.
        max_timescale: the base of the wavelengths.

    Returns:
        [..., C] in the dtype of `positions`.
    """
    sin_angles, cos_angles = sinusoid_angles(channels, max_timescale)
    return tf.concat([tf.sin(positions * tf.constant(sin_angles, positions.dtype)),
                      tf.cos(positions * tf.constant(cos_angles, positions.dtype))], axis=-1)


def average_pool_3x3(x, strides_hw):
    """3x3 'SAME' average pool of every frame of [B, T, H, W, C] (padding not counted)."""
    shape = dims(x)
    frames = tf.reshape(x, [-1] + shape[2:])
    pooled = tf.nn.avg_pool2d(frames, (3, 3), tuple(strides_hw), "SAME")
    return tf.reshape(pooled, shape[:2] + dims(pooled)[1:])


def _same_window_counts(height, width, stride, size=3):
    """[1, H', W', 1] numpy: how many in-image pixels each SAME `size` x `size` window holds."""
    def per_axis(n):
        out = -(-n // stride)
        pad = max((out - 1) * stride + size - n, 0) // 2
        starts = np.arange(out) * stride - pad
        return np.minimum(starts + size, n) - np.maximum(starts, 0)
    return np.outer(per_axis(height), per_axis(width)).astype(np.float32)[None, :, :, None]


def window_mean_3x3(x, strides_hw):
    """`average_pool_3x3` of one frame [1, H, W, C], as XNNPACK runs it in int8.

    A depthwise conv with an all-ones kernel sums each window; a multiplication by
    the constant reciprocal of each window's pixel count makes it the mean. XNNPACK
    has no int8 AVERAGE_POOL_2D (it would cut the int8 graph), and a float one kept in
    float by the quantizer's denylist still comes out int8 (the converter gives a pool
    its input's scale).
    """
    if strides_hw[0] != strides_hw[1]:
        raise ValueError(f"Skip pooling needs equal strides; got {strides_hw}.")
    _, height, width, channels = x.shape.as_list()
    summed = tf.nn.depthwise_conv2d(x, np.ones((3, 3, channels, 1), np.float32),
                                    (1, strides_hw[0], strides_hw[1], 1), "SAME")
    return summed * (1.0 / _same_window_counts(height, width, strides_hw[0]))


class FrameConv:
    """One inference 2D conv (dense or depthwise) with bias and activation, for a frame.

    The folded form of a conv + BatchNorm (+ a scalar): see `CausalConv3D.frame_step`.

    Args:
        kernel: [kh, kw, Cin, Cout] (dense) or [kh, kw, C, 1] (depthwise).
        bias: [Cout].
        strides_hw: (sh, sw).
        depthwise: whether `kernel` is depthwise.
        activation: a function (e.g. from `get_activation`).
    """

    def __init__(self, kernel, bias, strides_hw, depthwise, activation):
        self.kernel = np.asarray(kernel, np.float32)
        self.bias = np.asarray(bias, np.float32)
        self.strides = (1, int(strides_hw[0]), int(strides_hw[1]), 1)
        self.depthwise = bool(depthwise)
        self.activation = activation

    def linear(self, x):
        """The conv and bias, without activation: [1, H, W, Cin] -> [1, H', W', Cout]."""
        if self.depthwise:
            y = tf.nn.depthwise_conv2d(x, self.kernel, self.strides, "SAME")
        else:
            y = tf.nn.conv2d(x, self.kernel, self.strides, "SAME")
        return tf.nn.bias_add(y, self.bias)

    def __call__(self, x):
        return self.activation(self.linear(x))
