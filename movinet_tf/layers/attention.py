"""Squeeze-excitation for video, causal and streamable, with positional encoding."""

import keras
import tensorflow as tf

from movinet_tf.layers import states as states_lib
from movinet_tf.layers import ops
from movinet_tf.layers.conv import CausalConv3D, WeightShape, with_prefix
from movinet_tf.layers.ops import dims
from movinet_tf.layers.pooling import CumulativeGlobalAveragePooling3D

SE_TYPES = ("3d", "2d", "2plus3d", "none")


def make_divisible(value, divisor=8):
    """Rounds a width to a multiple of `divisor`, never more than 10% below it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def se_hidden_filters(in_filters, se_type, se_ratio=0.25):
    """Width of the SE bottleneck for `in_filters` channels."""
    multiplier = 2 if se_type == "2plus3d" else 1
    return make_divisible(se_ratio * in_filters * multiplier, 8)


@keras.saving.register_keras_serializable(package="movinet_tf")
class PositionalEncoding(keras.layers.Layer):
    """Adds a sinusoidal encoding of the absolute frame index, ReZero-scaled.

    The encoding of channel pair k at position p is sin(p * w_k) for the first
    half of the channels and cos(p * w_k) for the second half (concatenated, not
    interleaved), with w_k = 10000^(-2k / C). It is multiplied by a learnable
    scalar that starts at 0, so a fresh layer is the identity.

    Args:
        state_prefix: prefix of the state name.
        max_timescale: the base of the wavelengths.

    Call arguments:
        inputs: [B, T, 1, 1, C] pooled features.
        states: dict of states, or None for a fresh clip.

    Returns:
        (outputs [B, T, 1, 1, C], new_states).

    States:
        ``{prefix}_pos_enc_frame_count``: (1,) int32, index of the next frame.
    """

    def __init__(self, state_prefix, max_timescale=10000, **kwargs):
        super().__init__(**kwargs)
        self.state_prefix = state_prefix
        self.max_timescale = max_timescale
        self.count_name = states_lib.state_name(state_prefix, "pos_enc_frame_count")

    def build(self, input_shape):
        self.channels = int(input_shape[-1])
        self.scale = self.add_weight(name="scale", shape=(), initializer="zeros")

    def call(self, inputs, states=None):
        count = states_lib.take_state(states, self.count_name)
        if count is None:
            count = tf.zeros([1], states_lib.FRAME_COUNT_DTYPE)
        num_frames = dims(inputs)[1]
        positions = tf.cast(tf.range(num_frames) + tf.reshape(count, []), inputs.dtype)
        positions = tf.reshape(positions, [-1, 1])
        encoding = ops.sinusoid_encoding(positions, self.channels, self.max_timescale)
        encoding = tf.reshape(encoding, [1, -1, 1, 1, self.channels])
        outputs = inputs + tf.cast(self.scale, inputs.dtype) * encoding
        new_count = count + tf.cast(num_frames, states_lib.FRAME_COUNT_DTYPE)
        return outputs, {self.count_name: new_count}

    def official_weights(self):
        """dict path -> variable, as in the TF Model Garden's checkpoints."""
        return {"_rezero/scale": self.scale}

    def frame_step(self):
        """This layer in inference for one frame.

        Returns:
            A callable (pooled [1, 1, 1, C], states) -> (outputs, new_states), its
            ops under `ops.FLOAT_SCOPE` (kept in float32 by an int8 export).
        """
        channels, max_timescale, count_name = self.channels, self.max_timescale, self.count_name
        scale = float(self.scale.numpy())

        def step(pooled, states):
            count = states[count_name]
            with tf.name_scope(ops.FLOAT_SCOPE):
                position = tf.cast(count, tf.float32)  # [1]
                encoding = ops.sinusoid_encoding(position, channels, max_timescale)  # [C]
                pooled = pooled + tf.reshape(encoding * scale, [1, 1, 1, -1])
            return pooled, {count_name: count + 1}

        return step

    def state_dims(self, input_shape=None, dtype=tf.float32):
        """The frame count (for any input): dict name -> StateDims."""
        del input_shape, dtype  # The count is (1,) int32 whatever the input.
        return {self.count_name: states_lib.StateDims((1,), states_lib.FRAME_COUNT_DTYPE)}

    def state_specs(self, input_shape=None, dtype=tf.float32):
        """dict name -> tf.TensorSpec of the states."""
        return states_lib.to_tensor_specs(self.state_dims(input_shape, dtype))

    def get_config(self):
        config = super().get_config()
        config.update(state_prefix=self.state_prefix, max_timescale=self.max_timescale)
        return config


@keras.saving.register_keras_serializable(package="movinet_tf")
class SqueezeExcitation(keras.layers.Layer):
    """Channel gating from pooled statistics, causal when the model streams.

    se_type picks the statistics the gate sees:

    * ``3d``: the mean over the clip (non-causal) or over frames 0..t (causal).
    * ``2d``: the spatial mean of each frame alone; keeps no state.
    * ``2plus3d``: both of the above, concatenated (2C channels).

    Then, if causal and `use_positional_encoding`, a positional encoding is
    added; then a 1x1x1 conv to the hidden width (bias, `activation`) and a
    1x1x1 conv back to C (bias, `gating_activation`) give the gate.

    Args:
        se_type: '3d', '2d' or '2plus3d'.
        causal: gate frame t with statistics of frames <= t only, and stream.
        use_positional_encoding: add a positional encoding (causal only).
        activation: activation of the reducing conv.
        gating_activation: activation of the gate.
        se_ratio: hidden width as a fraction of the input width (before rounding).
        hidden_filters: the hidden width itself, overriding se_ratio.
        kernel_l2: L2 factor on the conv kernels.
        state_prefix: prefix of the state names.

    Call arguments:
        inputs: [B, T, H, W, C].
        states: dict of states, or None for a fresh clip.

    Returns:
        (outputs [B, T, H, W, C], new_states).

    States (causal, se_type 3d or 2plus3d): those of the pool
    (``{prefix}_pool_buffer``, ``{prefix}_pool_frame_count``) and, with
    positional encoding, ``{prefix}_pos_enc_frame_count``.
    """

    def __init__(self, se_type="3d", causal=False, use_positional_encoding=False,
                 activation="swish", gating_activation="sigmoid", se_ratio=0.25, hidden_filters=None,
                 kernel_l2=0.0, state_prefix=None, **kwargs):
        super().__init__(**kwargs)
        if se_type not in SE_TYPES or se_type == "none":
            raise ValueError(f"Unknown se_type {se_type!r}; expected one of {SE_TYPES[:3]}.")
        self.se_type = se_type
        self.causal = bool(causal)
        self.use_positional_encoding = bool(use_positional_encoding)
        self.activation = activation
        self.gating_activation = gating_activation
        self.se_ratio = se_ratio
        self.hidden_filters = hidden_filters
        self.kernel_l2 = float(kernel_l2)
        self.state_prefix = state_prefix
        self.pool = None
        if se_type in ("3d", "2plus3d"):
            self.pool = CumulativeGlobalAveragePooling3D(
                causal=self.causal, stateful=self.causal, state_prefix=state_prefix, name="pool")
        self.pos_encoding = (PositionalEncoding(state_prefix, name="pos_encoding")
                             if self.causal and self.use_positional_encoding else None)

    def _widths(self, channels):
        """(pooled, hidden) widths for an input of `channels`."""
        pooled = 2 * channels if self.se_type == "2plus3d" else channels
        hidden = self.hidden_filters or se_hidden_filters(channels, self.se_type, self.se_ratio)
        return pooled, hidden

    def _make_convs(self, channels):
        if getattr(self, "se_reduce", None) is not None:
            return
        _, hidden = self._widths(channels)
        conv_args = dict(use_bias=True, use_batch_norm=False, kernel_l2=self.kernel_l2)
        self.se_reduce = CausalConv3D(hidden, 1, activation=self.activation, name="se_reduce",
                                      **conv_args)
        self.se_expand = CausalConv3D(channels, 1, activation=self.gating_activation,
                                      name="se_expand", **conv_args)

    def weight_shapes(self, channels):
        """dict path -> `WeightShape` of the weights for an input of `channels`."""
        self._make_convs(channels)
        pooled, hidden = self._widths(channels)
        groups = 2 if self.se_type == "2plus3d" else 1
        shapes = {**with_prefix("se_reduce/", self.se_reduce.weight_shapes(pooled, groups)),
                  **with_prefix("se_expand/", self.se_expand.weight_shapes(hidden))}
        if self.pos_encoding is not None:
            shapes["pos_encoding/scale"] = WeightShape(())
        return shapes

    def build(self, input_shape):
        channels = int(input_shape[-1])
        pooled, hidden = self._widths(channels)
        self._make_convs(channels)
        if self.pool is not None:
            self.pool.build((None, None, 1, 1, channels))
        if self.pos_encoding is not None:
            self.pos_encoding.build((None, None, 1, 1, pooled))
        self.se_reduce.build((None, None, 1, 1, pooled))
        self.se_expand.build((None, None, 1, 1, hidden))

    def call(self, inputs, states=None):
        new_states = {}
        frame_means = tf.reduce_mean(inputs, axis=[2, 3], keepdims=True)  # [B, T, 1, 1, C]
        if self.se_type == "2d":
            pooled = frame_means
        else:
            pooled, pool_states = self.pool(frame_means, states=states)
            new_states.update(pool_states)
            if self.se_type == "2plus3d":
                if not self.causal:
                    pooled = tf.broadcast_to(pooled, tf.shape(frame_means))
                pooled = tf.concat([pooled, frame_means], axis=-1)
        if self.pos_encoding is not None:
            pooled, pe_states = self.pos_encoding(pooled, states=states)
            new_states.update(pe_states)
        hidden, _ = self.se_reduce(pooled)
        gate, _ = self.se_expand(hidden)
        return gate * inputs, new_states

    def official_weights(self):
        """dict path -> variable, as in the TF Model Garden's checkpoints."""
        weights = {**with_prefix("_se_reduce/", self.se_reduce.official_weights()),
                   **with_prefix("_se_expand/", self.se_expand.official_weights())}
        if self.pos_encoding is not None:
            weights.update(with_prefix("_pos_encoding/", self.pos_encoding.official_weights()))
        return weights

    def frame_step(self):
        """This layer in inference for one frame: a `SqueezeExcitationStep`."""
        return SqueezeExcitationStep(self)

    def state_dims(self, input_shape, dtype=tf.float32):
        """States for an input [B, T, H, W, C]: dict name -> StateDims."""
        dims_by_name = {}
        if self.pool is not None:
            dims_by_name.update(self.pool.state_dims(input_shape, dtype))
        if self.pos_encoding is not None:
            dims_by_name.update(self.pos_encoding.state_dims(input_shape, dtype))
        return dims_by_name

    def state_specs(self, input_shape, dtype=tf.float32):
        """dict name -> tf.TensorSpec of the states for an input [B, T, H, W, C]."""
        return states_lib.to_tensor_specs(self.state_dims(input_shape, dtype))

    def get_config(self):
        config = super().get_config()
        config.update(se_type=self.se_type, causal=self.causal,
                      use_positional_encoding=self.use_positional_encoding,
                      activation=self.activation, gating_activation=self.gating_activation,
                      se_ratio=self.se_ratio, hidden_filters=self.hidden_filters,
                      kernel_l2=self.kernel_l2,
                      state_prefix=self.state_prefix)
        return config


class SqueezeExcitationStep:
    """A causal `SqueezeExcitation` in inference for one frame of batch 1.

    Call: (x [1, H, W, C], states) -> (x * gate, new_states).
    """

    def __init__(self, se):
        self.se_type = se.se_type
        self.pool = se.pool.frame_step() if se.pool is not None else None
        self.pos_encoding = se.pos_encoding.frame_step() if se.pos_encoding is not None else None
        self.reduce = se.se_reduce.frame_step()
        self.expand = se.se_expand.frame_step()

    def __call__(self, x, states):
        new_states = {}
        frame_mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)  # [1, 1, 1, C]
        pooled = frame_mean
        if self.pool is not None:
            pooled, pool_states = self.pool(frame_mean, states)
            new_states.update(pool_states)
            if self.se_type == "2plus3d":
                pooled = tf.concat([pooled, frame_mean], axis=-1)
        if self.pos_encoding is not None:
            pooled, pe_states = self.pos_encoding(pooled, states)
            new_states.update(pe_states)
        hidden, _ = self.reduce(pooled)
        gate, _ = self.expand(hidden)
        return x * gate, new_states
