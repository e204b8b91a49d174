"""The MoViNet building blocks: inverted bottleneck, skip path, head, classifier."""
import keras
import tensorflow as tf

from movinet_tf.layers import states as states_lib
from movinet_tf.layers.attention import SqueezeExcitation
from movinet_tf.layers import ops
from movinet_tf.layers.conv import CausalConv3D, WeightShape, with_prefix


@keras.saving.register_keras_serializable(package="movinet_tf")
class Scale(keras.layers.Layer):
    """Multiplies by one learnable scalar (ReZero); starts at `initial_value`."""

    def __init__(self, initial_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_value = float(initial_value)

    def build(self, input_shape):
        del input_shape
        self.scale = self.add_weight(
            name="scale", shape=(), initializer=keras.initializers.Constant(self.initial_value))

    def call(self, inputs):
        return inputs * tf.cast(self.scale, inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(initial_value=self.initial_value)
        return config


@keras.saving.register_keras_serializable(package="movinet_tf")
class StochasticDepth(keras.layers.Layer):
    """Drops the residual branch of whole samples with probability `rate` in training.

    Kept samples are scaled by 1 / (1 - rate), so inference is the identity.

    Call arguments:
        inputs: [B, ...].
        training: apply the random drop.
    """

    def __init__(self, rate=0.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Stochastic depth rate must be in [0, 1), got {rate}.")
        self.rate = float(rate)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        shape = [tf.shape(inputs)[0]] + [1] * (len(inputs.shape) - 1)
        mask = tf.floor(keep + tf.random.uniform(shape, dtype=inputs.dtype))
        return inputs / keep * mask

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate)
        return config


@keras.saving.register_keras_serializable(package="movinet_tf")
class SkipBlock(keras.layers.Layer):
    """The shortcut when a block changes width or resolution.

    Average-pools 3x3 with stride 2 ('SAME', padding excluded from the mean) when
    the block downsamples, then a 1x1x1 conv and BatchNorm, no activation.

    Call arguments:
        inputs: [B, T, H, W, Cin].

    Returns:
        [B, T, H', W', filters].
    """

    def __init__(self, filters, strides=(1, 1, 1), batch_norm_momentum=0.99,
                 batch_norm_epsilon=1e-3, kernel_l2=0.0, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = tuple(int(s) for s in strides)
        self.batch_norm_momentum = batch_norm_momentum
        self.batch_norm_epsilon = batch_norm_epsilon
        self.kernel_l2 = float(kernel_l2)
        self.projection = CausalConv3D(
            filters, 1, batch_norm_momentum=batch_norm_momentum,
            batch_norm_epsilon=batch_norm_epsilon, kernel_l2=kernel_l2, name="projection")

    def build(self, input_shape):
        self.projection.build(input_shape)

    def call(self, inputs, training=None):
        x = inputs
        if self.strides[1:] != (1, 1):
            x = ops.average_pool_3x3(x, self.strides[1:])
        x, _ = self.projection(x, training=training)
        return x

    def official_weights(self):
        """dict path -> variable, as in the TF Model Garden's checkpoints."""
        return with_prefix("_projection/", self.projection.official_weights())

    def weight_shapes(self, in_channels):
        """dict path -> `WeightShape` of the weights for an input of `in_channels`."""
        return with_prefix("projection/", self.projection.weight_shapes(in_channels))

    def frame_step(self):
        """This layer in inference for one frame: [1, H, W, Cin] -> [1, H', W', filters].

        The pool is `ops.window_mean_3x3` (XNNPACK runs it in int8), the
        projection a `CausalConv3D.frame_step` with its BatchNorm folded in.
        """
        strides = self.strides[1:]
        projection = self.projection.frame_step()

        def step(x):
            if strides != (1, 1):
                x = ops.window_mean_3x3(x, strides)
            return projection(x)[0]

        return step

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides,
                      batch_norm_momentum=self.batch_norm_momentum,
                      batch_norm_epsilon=self.batch_norm_epsilon, kernel_l2=self.kernel_l2)
        return config


@keras.saving.register_keras_serializable(package="movinet_tf")
class MovinetBlock(keras.layers.Layer):
    """A 3D inverted bottleneck (MobileNetV3-style) with ReZero and stochastic depth.

    expansion (1x1x1 conv, BN, act) -> feature (depthwise kt x kh x kw conv, BN,
    act; holds the stream buffer) -> squeeze-excitation -> projection (1x1x1
    conv, BN) -> ReZero scale -> stochastic depth -> + shortcut.

    Args:
        in_filters, out_filters, expand_filters: widths.
        kernel_size: (kt, kh, kw) of the depthwise feature conv.
        strides: (1, s, s).
        conv_type, se_type, causal, use_positional_encoding, activation,
        gating_activation: see `CausalConv3D` and `SqueezeExcitation`.
        stochastic_depth_rate: drop rate of this block's residual branch.
        batch_norm_momentum, batch_norm_epsilon, kernel_l2: as for the convs.
        state_prefix: prefix of this block's state names, 'state_block{b}_layer{l}'.

    Call arguments:
        inputs: [B, T, H, W, in_filters].
        states: dict of states, or None for a fresh clip.
        training: BatchNorm and stochastic depth mode.

    Returns:
        (outputs [B, T, H', W', out_filters], new_states).
    """

    def __init__(self, in_filters, out_filters, expand_filters, kernel_size, strides=(1, 1, 1),
                 conv_type="3d", se_type="3d", causal=False, use_positional_encoding=False,
                 activation="swish", gating_activation="sigmoid", stochastic_depth_rate=0.0,
                 batch_norm_momentum=0.99, batch_norm_epsilon=1e-3, kernel_l2=0.0,
                 state_prefix=None, **kwargs):
        super().__init__(**kwargs)
        self.in_filters = int(in_filters)
        self.out_filters = int(out_filters)
        self.expand_filters = int(expand_filters)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.strides = tuple(int(s) for s in strides)
        self.conv_type = conv_type
        self.se_type = se_type
        self.causal = bool(causal)
        self.use_positional_encoding = bool(use_positional_encoding)
        self.activation = activation
        self.gating_activation = gating_activation
        self.stochastic_depth_rate = float(stochastic_depth_rate)
        self.batch_norm_momentum = batch_norm_momentum
        self.batch_norm_epsilon = batch_norm_epsilon
        self.kernel_l2 = float(kernel_l2)
        self.state_prefix = state_prefix
        bn = dict(batch_norm_momentum=batch_norm_momentum, batch_norm_epsilon=batch_norm_epsilon,
                  kernel_l2=kernel_l2)
        self.expansion = CausalConv3D(expand_filters, 1, activation=activation, name="expansion",
                                      **bn)
        self.feature = CausalConv3D(
            expand_filters, self.kernel_size, self.strides, conv_type=conv_type, depthwise=True,
            causal=causal, activation=activation, state_prefix=state_prefix, name="feature", **bn)
        self.se = None
        if se_type != "none":
            self.se = SqueezeExcitation(
                se_type, causal=causal, use_positional_encoding=use_positional_encoding,
                activation=activation, gating_activation=gating_activation, kernel_l2=kernel_l2,
                state_prefix=state_prefix, name="se")
        self.projection = CausalConv3D(out_filters, 1, name="projection", **bn)
        self.rezero = Scale(0.0, name="rezero")
        self.stochastic_depth = StochasticDepth(self.stochastic_depth_rate, name="stochastic_depth")
        self.skip = None
        if self.in_filters != self.out_filters or self.strides != (1, 1, 1):
            self.skip = SkipBlock(out_filters, self.strides, name="skip", **bn)

    def build(self, input_shape):
        expanded = (None, None, None, None, self.expand_filters)
        self.expansion.build((None, None, None, None, self.in_filters))
        self.feature.build(expanded)
        if self.se is not None:
            self.se.build(expanded)
        self.projection.build(expanded)
        self.rezero.build(None)
        if self.skip is not None:
            self.skip.build((None, None, None, None, self.in_filters))

    def call(self, inputs, states=None, training=None):
        new_states = {}
        x, _ = self.expansion(inputs, training=training)
        x, feature_states = self.feature(x, states=states, training=training)
        new_states.update(feature_states)
        if self.se is not None:
            x, se_states = self.se(x, states=states)
            new_states.update(se_states)
        x, _ = self.projection(x, training=training)
        x = self.rezero(x)
        x = self.stochastic_depth(x, training=training)
        shortcut = inputs if self.skip is None else self.skip(inputs, training=training)
        return x + shortcut, new_states

    def official_weights(self):
        """dict path -> variable: the weights under the attribute paths of the TF Model
        Garden's checkpoints (inside one block layer; see `models/official_checkpoint`)."""
        parts = [("_expansion/", self.expansion), ("_feature/", self.feature),
                 ("_attention/", self.se), ("_projection/", self.projection),
                 ("_skip/", self.skip)]
        weights = {"_mobile_bottleneck/_rezero/scale": self.rezero.scale}
        for prefix, layer in parts:
            if layer is not None:
                weights.update(with_prefix(prefix, layer.official_weights()))
        return weights

    def weight_shapes(self):
        """dict path -> `WeightShape` of the weights `build` creates (no weights needed)."""
        expanded = self.expand_filters
        shapes = {**with_prefix("expansion/", self.expansion.weight_shapes(self.in_filters)),
                  **with_prefix("feature/", self.feature.weight_shapes(expanded))}
        if self.se is not None:
            shapes.update(with_prefix("se/", self.se.weight_shapes(expanded)))
        shapes.update(with_prefix("projection/", self.projection.weight_shapes(expanded)))
        shapes["rezero/scale"] = WeightShape(())
        if self.skip is not None:
            shapes.update(with_prefix("skip/", self.skip.weight_shapes(self.in_filters)))
        return shapes

    def frame_step(self):
        """This block in inference for one frame: a `MovinetBlockStep`."""
        return MovinetBlockStep(self)

    def output_dims(self, input_shape):
        """The output [B, T, H', W', out_filters] for an input [B, T, H, W, in_filters]."""
        expanded = list(input_shape[:4]) + [self.expand_filters]
        return self.feature.output_dims(expanded)[:4] + [self.out_filters]

    def state_dims(self, input_shape, dtype=tf.float32):
        """States for an input [B, T, H, W, in_filters]: dict name -> StateDims."""
        expanded = list(input_shape[:4]) + [self.expand_filters]
        dims_by_name = self.feature.state_dims(expanded, dtype)
        if self.se is not None:
            dims_by_name.update(self.se.state_dims(self.feature.output_dims(expanded), dtype))
        return dims_by_name

    def state_specs(self, input_shape, dtype=tf.float32):
        """dict name -> tf.TensorSpec of the states for an input [B, T, H, W, in_filters]."""
        return states_lib.to_tensor_specs(self.state_dims(input_shape, dtype))

    def get_config(self):
        config = super().get_config()
        config.update(
            in_filters=self.in_filters, out_filters=self.out_filters,
            expand_filters=self.expand_filters, kernel_size=self.kernel_size,
            strides=self.strides, conv_type=self.conv_type, se_type=self.se_type,
            causal=self.causal, use_positional_encoding=self.use_positional_encoding,
            activation=self.activation, gating_activation=self.gating_activation,
            stochastic_depth_rate=self.stochastic_depth_rate,
            batch_norm_momentum=self.batch_norm_momentum,
            batch_norm_epsilon=self.batch_norm_epsilon, kernel_l2=self.kernel_l2,
            state_prefix=self.state_prefix)
        return config


class MovinetBlockStep:
    """A causal `MovinetBlock` in inference for one frame of batch 1.

    Each conv has its BatchNorm folded in, and the ReZero scale is folded into
    the projection; stochastic depth is the identity.

    Call: (x [1, H, W, in_filters], states) -> ([1, H', W', out_filters], new_states).
    """

    def __init__(self, block):
        self.expansion = block.expansion.frame_step()
        self.feature = block.feature.frame_step()
        self.se = block.se.frame_step() if block.se is not None else None
        self.projection = block.projection.frame_step(
            output_scale=float(block.rezero.scale.numpy()))
        self.skip = block.skip.frame_step() if block.skip is not None else None

    def __call__(self, inputs, states):
        new_states = {}
        x, _ = self.expansion(inputs)
        x, feature_states = self.feature(x, states)
        new_states.update(feature_states)
        if self.se is not None:
            x, se_states = self.se(x, states)
            new_states.update(se_states)
        x, _ = self.projection(x)
        shortcut = inputs if self.skip is None else self.skip(inputs)
        return x + shortcut, new_states


@keras.saving.register_keras_serializable(package="movinet_tf")
class ClassifierHead(keras.layers.Layer):
    """Pooled features -> logits.

    1x1x1 conv to `hidden_filters` (bias, `activation`) -> dropout -> 1x1x1 conv
    to `num_classes` (bias) -> squeeze. No softmax: the output is logits, in
    float32 even under mixed precision.

    Args:
        num_classes: number of classes.
        hidden_filters: width of the hidden layer (2048, or 1024 for t0).
        activation: activation of the hidden layer.
        dropout_rate: dropout before the last layer.
        kernel_l2: L2 factor on the hidden kernel (the last layer has none).

    Call arguments:
        inputs: [B, 1, 1, 1, C] pooled features.
        training: dropout mode.

    Returns:
        logits [B, num_classes], float32.
    """

    def __init__(self, num_classes, hidden_filters=2048, activation="swish", dropout_rate=0.0,
                 kernel_l2=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
        self.hidden_filters = int(hidden_filters)
        self.activation = activation
        self.dropout_rate = float(dropout_rate)
        self.kernel_l2 = float(kernel_l2)
        self.hidden = CausalConv3D(hidden_filters, 1, use_bias=True, use_batch_norm=False,
                                   activation=activation, kernel_l2=kernel_l2, name="hidden")
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")
        self.classifier = CausalConv3D(
            num_classes, 1, use_bias=True, use_batch_norm=False,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01), name="classifier")

    def build(self, input_shape):
        self.hidden.build(input_shape)
        self.classifier.build((None, None, None, None, self.hidden_filters))

    def call(self, inputs, training=None):
        x, _ = self.hidden(inputs)
        if self.dropout_rate > 0:
            x = self.dropout(x, training=training)
        x, _ = self.classifier(x)
        logits = tf.reshape(x, [-1, self.num_classes])
        return tf.cast(logits, tf.float32)

    def official_weights(self):
        """dict path -> variable, as in the TF Model Garden's checkpoints."""
        return {**with_prefix("_head/", self.hidden.official_weights()),
                **with_prefix("_classifier/", self.classifier.official_weights())}

    def weight_shapes(self, in_channels):
        """dict path -> `WeightShape` of the weights for pooled features of `in_channels`."""
        return {**with_prefix("hidden/", self.hidden.weight_shapes(in_channels)),
                **with_prefix("classifier/", self.classifier.weight_shapes(self.hidden_filters))}

    def frame_step(self):
        """This head in inference: pooled [1, 1, 1, C] -> logits [1, num_classes]."""
        hidden, classifier = self.hidden.frame_step(), self.classifier.frame_step()
        num_classes = self.num_classes

        def step(pooled):
            logits, _ = classifier(hidden(pooled)[0])
            return tf.reshape(logits, [1, num_classes])

        return step

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, hidden_filters=self.hidden_filters,
                      activation=self.activation, dropout_rate=self.dropout_rate,
                      kernel_l2=self.kernel_l2)
        return config
