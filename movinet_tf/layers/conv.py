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
import keras
import tensorflow as tf

from movinet_tf.layers import states as states_lib
from movinet_tf.layers.activations import get_activation
from movinet_tf.layers.norm import BatchNorm

CONV_TYPES = ("3d", "2plus1d", "3d_2plus1d")


def _triple(value, name):
    if isinstance(value, int):
        return (value, value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 3:
        raise ValueError(f"{name} must be an int or 3 ints (t, h, w), got {value}.")
    return value


def dims(x):
    """The shape of `x` as a list: Python ints where static, scalar tensors elsewhere."""
    static = x.shape.as_list()
    if None not in static:
        return static
    dynamic = tf.shape(x)
    return [d if d is not None else dynamic[i] for i, d in enumerate(static)]


# Active multiply-add counters (see models/flops.py); each is a list to append to.
_MAC_COUNTERS = []


def _count_macs(outputs, kernel, depthwise):
    """Adds the multiply-adds of a conv producing `outputs` to active counters."""
    if not _MAC_COUNTERS:
        return
    if not outputs.shape.is_fully_defined():
        raise ValueError("count_flops needs a fully defined input shape; got an output of "
                         f"shape {outputs.shape}.")
    taps = kernel.shape[0] * kernel.shape[1] * kernel.shape[2]
    per_output = taps * (1 if depthwise else kernel.shape[3])
    kind = "depthwise" if depthwise else "conv"
    for counter in _MAC_COUNTERS:
        counter.append((kind, outputs.shape.num_elements() * per_output))


def _conv_frames(x, kernel, strides_hw, depthwise):
    """Applies a (1, kh, kw) kernel to every frame.

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
    if kh == 1 and kw == 1 and strides_hw == (1, 1):
        if depthwise:
            out = x * tf.reshape(kernel, [cout])
        else:
            out = tf.tensordot(x, tf.reshape(kernel, [-1, cout]), axes=1)
        _count_macs(out, kernel, depthwise)
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
    _count_macs(out, kernel, depthwise)
    return out


def _conv_time(x, kernel, strides_hw, depthwise, num_out_frames):
    """Valid-in-time convolution as a sum over the kernel's temporal taps.

    Args:
        x: [B, T_out + kt - 1, H, W, Cin], already padded in time.
        kernel: [kt, kh, kw, Cin or 1, Cout].
        num_out_frames: T_out (a scalar tensor or int).

    Returns:
        [B, T_out, H', W', Cout].
    """
    kt = kernel.shape[0]
    if kt == 1:
        return _conv_frames(x, kernel, strides_hw, depthwise)
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
        _count_macs(out, kernel, depthwise=True)
        return out
    total = None
    for tap in range(kt):
        window = x[:, tap:tap + num_out_frames]
        term = _conv_frames(window, kernel[tap:tap + 1], strides_hw, depthwise)
        total = term if total is None else total + term
    return total


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

    def build(self, input_shape):
        cin = int(input_shape[-1])
        cout = self.output_channels(cin)
        kt, kh, kw = self.kernel_size
        group_in = 1 if self.depthwise else cin
        if self.factorized:
            self.kernel = self._kernel("kernel", (1, kh, kw, group_in, cout))
            temporal_in = 1 if self.depthwise else cout
            self.temporal_kernel = self._kernel("temporal_kernel", (kt, 1, 1, temporal_in, cout))
        else:
            self.kernel = self._kernel("kernel", (kt, kh, kw, group_in, cout))
            self.temporal_kernel = None
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
            front = (kt - 1) // 2
            return tf.pad(x, [[0, 0], [front, kt - 1 - front], [0, 0], [0, 0], [0, 0]]), {}
        buffer = states_lib.take_state(states, self.buffer_name)
        if buffer is None:
            shape = dims(x)
            buffer = tf.zeros([shape[0], kt - 1] + shape[2:], x.dtype)
        full = tf.concat([tf.cast(buffer, x.dtype), x], axis=1)
        return full, {self.buffer_name: full[:, -(kt - 1):]}

    def call(self, inputs, states=None, training=None):
        x = inputs
        num_frames = dims(x)[1]
        sh, sw = self.strides[1:]
        if self.factorized:
            x = _conv_frames(x, tf.cast(self.kernel, x.dtype), (sh, sw), self.depthwise)
            x = self._norm_act(x, self.bn, training)
            x, new_states = self._pad_time(x, states)
            x = _conv_time(x, tf.cast(self.temporal_kernel, x.dtype), (1, 1), self.depthwise,
                           num_frames)
            bn = self.bn_temporal
        else:
            x, new_states = self._pad_time(x, states)
            x = _conv_time(x, tf.cast(self.kernel, x.dtype), (sh, sw), self.depthwise, num_frames)
            bn = self.bn
        if self.bias is not None:
            x = x + tf.cast(self.bias, x.dtype)
        return self._norm_act(x, bn, training), new_states

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


def _ceil_div(value, divisor):
    if value is None:
        return None
    if isinstance(value, int):
        return -(-value // divisor)
    return (value + divisor - 1) // divisor
