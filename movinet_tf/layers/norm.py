"""BatchNorm over the channels of video tensors, with a fused training path.

Keras 3's `BatchNormalization` computes batch moments and normalises with
separate ops, forward and backward. On CPU that made BatchNorm the largest
difference in training speed against the official (tf_keras, fused) model. In
training mode this layer folds the leading axes into one,
[B, T, H, W, C] -> [B*T, H, W, C], and runs TensorFlow's fused batch-norm
kernel, which computes the moments and the normalisation (and their gradients)
in one op each. The statistics are the same: mean and (biased) variance over
every axis but the channels. Inference and frozen layers take the Keras path.
The weights, their names and the moving-average update are Keras's, so
checkpoints are unaffected.
"""
import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="movinet_tf")
class BatchNorm(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` on the last axis, fused in training.

    Takes the arguments of `keras.layers.BatchNormalization`; the fused path is
    used for inputs of rank 4 or 5 normalised over the last axis, without
    renorm, a mask or synchronisation.
    """

    def scale_offset(self):
        """(scale, offset), float64 numpy [C], with bn(x) == x * scale + offset in inference.

        What a conv before this layer folds in (see `CausalConv3D.frame_step`).
        """
        mean = np.asarray(self.moving_mean.numpy(), np.float64)
        variance = np.asarray(self.moving_variance.numpy(), np.float64)
        gamma = np.asarray(self.gamma.numpy(), np.float64) if self.scale else np.ones_like(mean)
        beta = np.asarray(self.beta.numpy(), np.float64) if self.center else np.zeros_like(mean)
        scale = gamma / np.sqrt(variance + self.epsilon)
        return scale, beta - mean * scale

    def official_weights(self):
        """dict name -> variable, named as in the TF Model Garden's checkpoints."""
        return {part: getattr(self, part)
                for part in ("gamma", "beta", "moving_mean", "moving_variance")}

    def _fusable(self, inputs, mask):
        rank = len(inputs.shape)
        return (rank in (4, 5) and self.axis in (-1, rank - 1) and mask is None
                and not self.renorm and not getattr(self, "synchronized", False)
                and self.scale and self.center)

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        x = tf.cast(inputs, tf.float32)
        shape = tf.shape(x)
        if len(inputs.shape) == 5:
            x = tf.reshape(x, tf.stack([-1, shape[2], shape[3], channels]))
        y, mean, unbiased_variance = tf.compat.v1.nn.fused_batch_norm(
            x, tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32),
            epsilon=self.epsilon, data_format="NHWC", is_training=True)
        # The fused op returns the Bessel-corrected variance; Keras averages the biased one.
        count = tf.cast(tf.size(x) // channels, tf.float32)
        variance = unbiased_variance * (count - 1.0) / tf.maximum(count, 1.0)
        self.moving_mean.assign(
            self.moving_mean * self.momentum + tf.cast(mean, self.moving_mean.dtype)
            * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + tf.cast(variance, self.moving_variance.dtype)
            * (1.0 - self.momentum))
        if len(inputs.shape) == 5:
            y = tf.reshape(y, shape)
        return tf.cast(y, self.compute_dtype)
