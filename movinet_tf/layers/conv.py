"""Causal 3D convolution with an explicit stream buffer.

`CausalConv3D` is the convolution block every MoViNet layer is made of:
conv -> BatchNorm -> activation, in one of three factorisations:

* ``3d``: one (kt, kh, kw) convolution.
* ``2plus1d`` / ``3d_2plus1d``: a (1, kh, kw) spatial convolution (+BN +act)
  followed by a (kt, 1, 1) temporal convolution (+BN +act). The two names carry
  the same weights and compute the same function; both names are accepted so
  that configs and checkpoints of either kind load. (The reference code lowers
  them to different TF ops; ours always lowers to TFLite builtin ops.)

In causal mode the temporal padding is ``kt - 1`` frames in front. Those frames
come from the stream buffer: zeros at the start of a clip, and the last
``kt - 1`` input frames of the previous call when streaming. For the factorised
types the buffer sits between the spatial and the temporal convolution, so it
holds post-stride features. Spatial padding always follows TF ``'SAME'``.

All convolutions are computed with 2D ops on ``[B*T, H, W, C]`` reshapes, and a
temporal kernel is a sum over its taps, so depthwise 3D convolutions need no XLA
on CPU and every op converts to a TFLite builtin.
"""
import collections

import keras
import numpy as np
import tensorflow as tf

from movinet_tf.layers import ops
from movinet_tf.layers import states as states_lib
from movinet_tf.layers.activations import get_activation
from movinet_tf.layers.norm import BatchNorm
from movinet_tf.layers.ops import dims

CONV_TYPES = ("3d", "2plus1d", "3d_2plus1d")
BN_PARTS = ("gamma", "beta", "moving_mean", "moving_variance")

# The shape of one weight, and into how many equal groups its input channels
# (axis 3 of a kernel) fall: a weight-sharing supernet slices the first channels
# of each group (see `CausalConv3D.weight_shapes` and `nas/supernet.py`).
WeightShape = collections.namedtuple("WeightShape", ["shape", "input_groups"], defaults=(1,))


def _triple(value, name):
    if isinstance(value, int):
        return (value, value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 3:
        raise ValueError(f"{name} must be an int or 3 ints (t, h, w), got {value}.")
    return value


@keras.saving.register_keras_serializable(package="movinet_tf")
class CausalConv3D(keras.layers.Layer):
    """Conv3D -> BatchNorm -> activation, causal in time, with a stream buffer.

    Args:
        filters: output channels (ignored for depthwise, which keeps Cin).
        kernel_size: (kt, kh, kw).
        strides: (st, sh, sw); st must be 1.
        conv_type: '3d', '2plus1d' or '3d_2plus1d'.
        depthwise: one filter per input channel.
        causal: pad time in front only, and keep a stream buffer of kt - 1 frames.
        use_bias: add a bias after the (last) convolution.
        use_batch_norm: BatchNorm after each convolution.
        activation: name of the activation after each BatchNorm (None: none).
        batch_norm_momentum, batch_norm_epsilon: BatchNorm settings.
        kernel_initializer: initializer for kernels.
        kernel_l2: L2 factor on the kernels (0 disables).
        state_prefix: prefix of the state names, e.g. 'state_block1_layer0'.

    Call arguments:
        inputs: [B, T, H, W, Cin].
        states: dict of states, or None for a fresh clip.
        training: BatchNorm mode.

    Returns:
        (outputs [B, T, H', W', Cout], new_states dict).

    States (causal and kt > 1 only):
        ``{prefix}_stream_buffer``: [B, kt - 1, H_b, W_b, C_b], the last kt - 1
        frames entering the temporal convolution (input resolution and channels
        for '3d'; post-stride resolution and output channels for the factorised
        types).
    """

    def __init__(self, filters, kernel_size, strides=(1, 1, 1), conv_type="3d", depthwise=False,
                 causal=False, use_bias=False, use_batch_norm=True, activation=None,
                 batch_norm_momentum=0.99, batch_norm_epsilon=1e-3, kernel_initializer="he_normal",
                 kernel_l2=0.0, state_prefix=None, **kwargs):
        super().__init__(**kwargs)
        if conv_type not in CONV_TYPES:
            raise ValueError(f"Unknown conv_type {conv_type!r}; expected one of {CONV_TYPES}.")
        self.filters = int(filters)
        self.kernel_size = _triple(kernel_size, "kernel_size")
        self.strides = _triple(strides, "strides")
        if self.strides[0] != 1:
            raise ValueError(f"Temporal stride must be 1 for streaming, got strides={self.strides}.")
        self.conv_type = conv_type
        self.depthwise = bool(depthwise)
        self.causal = bool(causal)
        self.use_bias = bool(use_bias)
        self.use_batch_norm = bool(use_batch_norm)
        self.activation = activation
        self.batch_norm_momentum = batch_norm_momentum
        self.batch_norm_epsilon = batch_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_l2 = float(kernel_l2)
        self.state_prefix = state_prefix
        self._act = get_activation(activation)
        kt = self.kernel_size[0]
        self.factorized = conv_type != "3d" and kt > 1
        if self.causal and kt > 1 and not state_prefix:
            raise ValueError("A causal convolution with kt > 1 needs a state_prefix.")
        self.buffer_name = (states_lib.state_name(state_prefix, "stream_buffer")
                            if self.causal and kt > 1 else None)
        self.bn = self._make_bn("bn")
        self.bn_temporal = self._make_bn("bn_temporal") if self.factorized else None

    def _make_bn(self, name):
        if not self.use_batch_norm:
            return None
        return BatchNorm(
            momentum=self.batch_norm_momentum, epsilon=self.batch_norm_epsilon, name=name)

    def _kernel(self, name, shape):
        regularizer = keras.regularizers.L2(self.kernel_l2) if self.kernel_l2 else None
        return self.add_weight(name=name, shape=shape, initializer=self.kernel_initializer,
                               regularizer=regularizer)

    def output_channels(self, in_channels):
        return in_channels if self.depthwise else self.filters

    def weight_shapes(self, in_channels, input_groups=1):
        """dict path -> `WeightShape` of the weights `build` creates for `in_channels`.

        Args:
            in_channels: Cin.
            input_groups: the input is this many equal groups of channels (e.g. the
                two halves of a '2plus3d' squeeze-excitation's pooled features).
        """
        cin = int(in_channels)
        cout = self.output_channels(cin)
        kt, kh, kw = self.kernel_size
        group_in = 1 if self.depthwise else cin
        if self.factorized:
            shapes = {"kernel": WeightShape((1, kh, kw, group_in, cout), input_groups),
                      "temporal_kernel": WeightShape(
                          (kt, 1, 1, 1 if self.depthwise else cout, cout))}
        else:
            shapes = {"kernel": WeightShape((kt, kh, kw, group_in, cout), input_groups)}
        if self.use_bias:
            shapes["bias"] = WeightShape((cout,))
        for name in ("bn", "bn_temporal") if self.use_batch_norm else ():
            if name == "bn" or self.factorized:
                shapes.update({f"{name}/{part}": WeightShape((cout,)) for part in BN_PARTS})
        return shapes

    def build(self, input_shape):
        shapes = self.weight_shapes(int(input_shape[-1]))
        cout = shapes["kernel"].shape[-1]
        self.kernel = self._kernel("kernel", shapes["kernel"].shape)
        self.temporal_kernel = (self._kernel("temporal_kernel", shapes["temporal_kernel"].shape)
                                if self.factorized else None)
        self.bias = (self.add_weight(name="bias", shape=(cout,), initializer="zeros")
                     if self.use_bias else None)
        out_shape = (None, None, None, None, cout)
        if self.bn is not None:
            self.bn.build(out_shape)
        if self.bn_temporal is not None:
            self.bn_temporal.build(out_shape)

    def _norm_act(self, x, bn, training):
        if bn is not None:
            x = bn(x, training=training)
        return self._act(x)

    def _pad_time(self, x, states):
        """Pads time before a temporal convolution; returns (padded, new_states)."""
        kt = self.kernel_size[0]
        if kt == 1:
            return x, {}
        if not self.causal:
            return ops.pad_time(x, kt, causal=False), {}
        buffer = states_lib.take_state(states, self.buffer_name)
        if buffer is None:
            shape = dims(x)
            buffer = tf.zeros([shape[0], kt - 1] + shape[2:], x.dtype)
            full = tf.concat([buffer, x], axis=1)
            return full, {self.buffer_name: full[:, -(kt - 1):]}
        buffer = tf.ensure_shape(tf.cast(buffer, x.dtype), [None, kt - 1, None, None, None])
        full, next_buffer = ops.buffer_concat(buffer, x)
        return full, {self.buffer_name: next_buffer}

    def call(self, inputs, states=None, training=None):
        x = inputs
        num_frames = dims(x)[1]
        sh, sw = self.strides[1:]
        if self.factorized:
            x = ops.conv_frames(x, tf.cast(self.kernel, x.dtype), (sh, sw), self.depthwise)
            x = self._norm_act(x, self.bn, training)
            x, new_states = self._pad_time(x, states)
            x = ops.conv_time(x, tf.cast(self.temporal_kernel, x.dtype), (1, 1), self.depthwise,
                           num_frames)
            bn = self.bn_temporal
        else:
            x, new_states = self._pad_time(x, states)
            x = ops.conv_time(x, tf.cast(self.kernel, x.dtype), (sh, sw), self.depthwise,
                              num_frames)
            bn = self.bn
        if self.bias is not None:
            x = x + tf.cast(self.bias, x.dtype)
        return self._norm_act(x, bn, training), new_states

    def official_weights(self):
        """dict path -> variable: this layer's weights under the attribute paths of the
        TF Model Garden's checkpoints (inside the layer; see `models/official_checkpoint`).

        Kernels are ``_conv/kernel`` whatever the official layer type (Conv2D,
        DepthwiseConv2D, Conv3D), the factorised temporal kernel
        ``_conv_temporal/kernel``; each BatchNorm is ``_batch_norm[_temporal]/<part>``.
        """
        weights = {"_conv/kernel": self.kernel}
        if self.bias is not None:
            weights["_conv/bias"] = self.bias
        if self.temporal_kernel is not None:
            weights["_conv_temporal/kernel"] = self.temporal_kernel
        for prefix, bn in (("_batch_norm/", self.bn), ("_batch_norm_temporal/", self.bn_temporal)):
            if bn is not None:
                weights.update(with_prefix(prefix, bn.official_weights()))
        return weights

    def frame_step(self, output_scale=1.0):
        """This layer in inference for one frame, with its BatchNorm folded in.

        Args:
            output_scale: a scalar folded into the last conv (e.g. the ReZero
                scale that follows a block's projection).

        Returns:
            A `CausalConvStep`: (x [1, H, W, Cin], states) -> (y [1, H', W', Cout],
            new_states). The weights are read now: later changes do not reach it.
        """
        return CausalConvStep(self, output_scale)

    def output_dims(self, input_shape):
        """The output [B, T, H', W', Cout] for an input [B, T, H, W, Cin].

        Dims may be ints, None or scalar tensors (Cin must be an int).
        """
        batch, frames, height, width, cin = input_shape
        return [batch, frames, _ceil_div(height, self.strides[1]),
                _ceil_div(width, self.strides[2]), self.output_channels(int(cin))]

    def state_dims(self, input_shape, dtype=tf.float32):
        """States for an input [B, T, H, W, Cin] (T is ignored): dict name -> StateDims."""
        if not self.buffer_name:
            return {}
        batch, _, height, width, cin = input_shape
        if self.factorized:  # The buffer holds the spatial conv's output.
            _, _, height, width, cin = self.output_dims(input_shape)
        shape = (batch, self.kernel_size[0] - 1, height, width, int(cin))
        return {self.buffer_name: states_lib.StateDims(shape, dtype)}

    def state_specs(self, input_shape, dtype=tf.float32):
        """dict name -> tf.TensorSpec of the states for an input [B, T, H, W, Cin]."""
        return states_lib.to_tensor_specs(self.state_dims(input_shape, dtype))

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
            conv_type=self.conv_type, depthwise=self.depthwise, causal=self.causal,
            use_bias=self.use_bias, use_batch_norm=self.use_batch_norm,
            activation=self.activation, batch_norm_momentum=self.batch_norm_momentum,
            batch_norm_epsilon=self.batch_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_l2=self.kernel_l2, state_prefix=self.state_prefix)
        return config


def with_prefix(prefix, weights):
    """dict path -> variable, with `prefix` in front of every path."""
    return {prefix + path: variable for path, variable in weights.items()}


def _ceil_div(value, divisor):
    if value is None:
        return None
    if isinstance(value, int):
        return -(-value // divisor)
    return (value + divisor - 1) // divisor


def _folded_tap(kernel_tap, depthwise, bn, conv_bias, scale):
    """(kernel, bias) float64 of one temporal tap [kh, kw, Cin or 1, Cout] with `bn`
    (or None) and the scalar `scale` folded in; a depthwise kernel as [kh, kw, C, 1]."""
    kernel = np.asarray(kernel_tap, np.float64)
    cout = kernel.shape[-1]
    bias = np.zeros(cout) if conv_bias is None else np.asarray(conv_bias, np.float64)
    if bn is not None:
        bn_scale, bn_offset = bn.scale_offset()
        kernel = kernel * bn_scale
        bias = bias * bn_scale + bn_offset
    if depthwise:
        kernel = kernel.reshape(kernel.shape[0], kernel.shape[1], cout, 1)
    return kernel * scale, bias * scale


class CausalConvStep:
    """A `CausalConv3D` in inference for one frame of batch 1 (`CausalConv3D.frame_step`).

    Each conv is one 2D op with a fused bias. The stream buffer is
    ``[kt - 1, H, W, C]`` (the ``"frame"`` layout: buffered frames on the batch
    axis) or the published ``[1, kt - 1, H, W, C]``, told apart by rank; the
    new buffer comes back in the layout it came in. For the factorised types
    the temporal depthwise conv over ``concat(buffer, frame)`` is one
    DEPTHWISE_CONV_2D of a ``kt x 1`` kernel over ``[1, kt, H*W, C]``.

    Call: (x [1, H, W, Cin], states=None) -> (y [1, H', W', Cout], new_states).
    """

    def __init__(self, conv, output_scale=1.0):
        kt = conv.kernel_size[0]
        if kt > 1 and not conv.causal:
            raise ValueError(f"Layer {conv.name!r} is not causal; only stream models export "
                             "to a single-frame graph.")
        self.kt = kt
        self.buffer_name = conv.buffer_name
        self.factorized = conv.factorized
        self.depthwise = conv.depthwise
        self.activation = get_activation(conv.activation)
        strides = conv.strides[1:]
        kernel = conv.kernel.numpy()
        bias = conv.bias.numpy() if conv.bias is not None else None
        scale = float(output_scale)
        if self.factorized:
            # Spatial conv (+BN +act), then the temporal conv (+bias +BN +act).
            spatial = _folded_tap(kernel[0], conv.depthwise, conv.bn, None, 1.0)
            self.spatial = ops.FrameConv(*spatial, strides, conv.depthwise, self.activation)
            temporal = conv.temporal_kernel.numpy()  # [kt, 1, 1, in, out]
            taps, temporal_bias = _folded_tap(temporal[:, 0, 0], False, conv.bn_temporal, bias,
                                              scale)  # [kt, in, out]
            self.temporal_bias = np.asarray(temporal_bias, np.float32)
            if self.depthwise:  # [kt, 1, C] -> a depthwise filter [kt, 1, C, 1].
                self.taps = np.asarray(taps, np.float32).reshape(kt, 1, taps.shape[-1], 1)
            else:
                self.taps = np.asarray(taps, np.float32)[:, None, None]  # [kt, 1, 1, in, out]
        elif kt > 1:
            self.spatial = None
            # One folded conv per tap; the bias and BN offset are added once, by the last tap.
            self.tap_convs = []
            for tap in range(kt):
                last = tap == kt - 1
                tap_kernel, tap_bias = _folded_tap(kernel[tap], conv.depthwise, conv.bn,
                                                   bias if last else None, scale)
                if not last:
                    tap_bias = np.zeros_like(tap_bias)
                self.tap_convs.append(ops.FrameConv(tap_kernel, tap_bias, strides,
                                                    conv.depthwise, get_activation(None)))
        else:
            folded = _folded_tap(kernel[0], conv.depthwise, conv.bn, bias, scale)
            self.spatial = ops.FrameConv(*folded, strides, conv.depthwise, self.activation)

    def _buffered(self, x, states):
        """(the kt frames [kt, H, W, C], oldest first; the new states)."""
        buffer = states[self.buffer_name]
        if buffer.shape.rank == 5:
            # Published layout [1, kt - 1, H, W, C]: concatenate in 5-D, so the state
            # needs no reshape (a copy) at the model's boundary.
            full = tf.concat([buffer, tf.expand_dims(x, 1)], axis=1)  # [1, kt, H, W, C]
            return (tf.reshape(full, [self.kt] + x.shape.as_list()[1:]),
                    {self.buffer_name: full[:, 1:]})
        full = tf.concat([buffer, x], axis=0)  # [kt, H, W, C]
        return full, {self.buffer_name: full[1:]}

    def __call__(self, x, states=None):
        if self.kt == 1:
            return self.spatial(x), {}
        if self.factorized:
            x = self.spatial(x)
        full, new_states = self._buffered(x, states)
        y = None
        if self.factorized and self.depthwise:
            flat = tf.reshape(full, [1, self.kt, -1, x.shape[-1]])
            y = tf.nn.depthwise_conv2d(flat, self.taps, [1, 1, 1, 1], "VALID")
            y = tf.reshape(y, tf.shape(x))
        elif self.factorized:
            for tap in range(self.kt):
                term = tf.nn.conv2d(full[tap:tap + 1], self.taps[tap], [1, 1, 1, 1], "SAME")
                y = term if y is None else y + term
        else:
            for tap, conv in enumerate(self.tap_convs):
                term = conv.linear(full[tap:tap + 1])
                y = term if y is None else y + term
        if self.factorized:
            y = tf.nn.bias_add(y, self.temporal_bias)
        return self.activation(y), new_states
