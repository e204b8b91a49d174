"""Cumulative global average pooling (CGAP) with explicit state."""
import keras
import tensorflow as tf

from movinet_tf.layers import states as states_lib
from movinet_tf.layers import ops
from movinet_tf.layers.ops import dims


@keras.saving.register_keras_serializable(package="movinet_tf")
class CumulativeGlobalAveragePooling3D(keras.layers.Layer):
    """Global average pooling over (T, H, W) that can be streamed exactly.

    Two modes:

    * ``causal=True`` (CGAP, used inside causal squeeze-excitation): the output
      at frame t is the mean of frames 0..t, so no frame sees the future.
      Output [B, T, 1, 1, C].
    * ``causal=False`` (the head pool): the mean over every frame seen so far,
      [B, 1, 1, 1, C]. Streamed one frame at a time it ends at exactly the mean of
      the whole clip.

    With ``stateful=True`` the pool carries the running mean and the number of
    frames seen across calls. The buffer keeps the *mean* rather than the running
    sum of the reference implementation: it has the same name, shape and dtype,
    but stays bounded on long streams, which keeps it representable when the
    model is quantized.

    Args:
        causal: cumulative per-frame output (True) or one output for the clip.
        stateful: declare and return the states below.
        state_prefix: prefix of the state names.

    Call arguments:
        inputs: [B, T, H, W, C].
        states: dict of states, or None for a fresh clip.

    Returns:
        (outputs, new_states): outputs [B, T, 1, 1, C] (causal) or
        [B, 1, 1, 1, C]; new_states is empty unless stateful.

    States (stateful only):
        ``{prefix}_pool_buffer``: [B, 1, 1, 1, C], mean of the frames seen.
        ``{prefix}_pool_frame_count``: (1,) int32, number of frames seen.
    """

    def __init__(self, causal=False, stateful=False, state_prefix=None, **kwargs):
        super().__init__(**kwargs)
        self.causal = bool(causal)
        self.stateful = bool(stateful)
        self.state_prefix = state_prefix
        if self.stateful and not state_prefix:
            raise ValueError("A stateful pool needs a state_prefix.")
        if self.stateful:
            self.buffer_name = states_lib.state_name(state_prefix, "pool_buffer")
            self.count_name = states_lib.state_name(state_prefix, "pool_frame_count")
        else:
            self.buffer_name = self.count_name = None

    def build(self, input_shape):
        del input_shape  # No weights.

    def call(self, inputs, states=None):
        x = inputs
        frame_means = tf.reduce_mean(x, axis=[2, 3], keepdims=True)  # [B, T, 1, 1, C]
        num_frames = dims(x)[1]
        mean = count = previous = None
        if self.stateful:
            mean = states_lib.take_state(states, self.buffer_name)
            count = states_lib.take_state(states, self.count_name)
        if mean is not None:
            previous = states_lib.frame_count_as(count, x.dtype)
        outputs = ops.cumulative_mean(frame_means, self.causal, mean, previous)
        if not self.stateful:
            return outputs, {}
        if count is None:
            count = tf.zeros([1], states_lib.FRAME_COUNT_DTYPE)
        new_states = {
            self.buffer_name: outputs[:, -1:],
            self.count_name: count + tf.cast(num_frames, states_lib.FRAME_COUNT_DTYPE),
        }
        return outputs, new_states

    def frame_step(self):
        """This pool in inference for one frame (stateful pools only).

        Returns:
            A callable (frame_mean [1, 1, 1, C], states) -> (mean [1, 1, 1, C],
            new_states): the mean of every frame so far, by `ops.running_mean_step`
            (kept in float32 by an int8 export). The buffer may be [1, 1, 1, C]
            (the ``"frame"`` layout) or the published [1, 1, 1, 1, C].
        """
        if not self.stateful:
            raise ValueError(f"Pool {self.name!r} is not stateful; only stream models export "
                             "to a single-frame graph.")
        buffer_name, count_name = self.buffer_name, self.count_name

        def step(frame_mean, states):
            mean, stored, count = ops.running_mean_step(states[buffer_name], states[count_name],
                                                        frame_mean)
            return mean, {buffer_name: stored, count_name: count}

        return step

    def state_dims(self, input_shape, dtype=tf.float32):
        """States for an input [B, T, H, W, C]: dict name -> StateDims."""
        if not self.stateful:
            return {}
        batch, channels = input_shape[0], int(input_shape[-1])
        return {
            self.buffer_name: states_lib.StateDims((batch, 1, 1, 1, channels), dtype),
            self.count_name: states_lib.StateDims((1,), states_lib.FRAME_COUNT_DTYPE),
        }

    def state_specs(self, input_shape, dtype=tf.float32):
        """dict name -> tf.TensorSpec of the states for an input [B, T, H, W, C]."""
        return states_lib.to_tensor_specs(self.state_dims(input_shape, dtype))

    def get_config(self):
        config = super().get_config()
        config.update(causal=self.causal, stateful=self.stateful, state_prefix=self.state_prefix)
        return config
