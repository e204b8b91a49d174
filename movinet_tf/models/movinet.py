"""MoViNet backbone and classifier, and `build_model`.

Calling conventions (one docstring for the whole contract):

* Base models: ``logits = model(video)`` with video [B, T, H, W, 3] floats in
  [0, 1]; logits [B, num_classes].
* Stream models (``stream=True``) accept the same whole-clip call (used for
  training), and stream with explicit state::

      states = model.init_states([1, 1, 172, 172, 3])
      for frames in clip_chunks:              # [B, t, H, W, 3], any t >= 1
          logits, states = model({**states, "image": frames})

  The logits after the last chunk equal ``model(whole_clip)``.
"""
import keras
import tensorflow as tf

from movinet_tf.layers import states as states_lib
from movinet_tf.layers.attention import SE_TYPES
from movinet_tf.layers.blocks import ClassifierHead, MovinetBlock
from movinet_tf.layers.conv import CONV_TYPES, CausalConv3D
from movinet_tf.layers.pooling import CumulativeGlobalAveragePooling3D
from movinet_tf.models import specs as specs_lib


@keras.saving.register_keras_serializable(package="movinet_tf")
class MovinetBackbone(keras.layers.Layer):
    """Stem, inverted-bottleneck blocks and the pooled head of a MoViNet.

    Args:
        block_specs: the architecture as a spec string (see `specs.py`).
        causal: causal convolutions and squeeze-excitation, and streaming states.
        conv_type: '3d', '2plus1d' or '3d_2plus1d'.
        se_type: '3d', '2d', '2plus3d' or 'none'.
        activation: activation of the convolutions.
        gating_activation: activation of the squeeze-excitation gate.
        use_positional_encoding: positional encoding in the SE (causal only).
        stochastic_depth_drop_rate: drop rate of the last block layer; layer i of
            N gets rate * i / N.
        batch_norm_momentum, batch_norm_epsilon: BatchNorm settings.
        kernel_l2: L2 factor on every conv kernel.

    Call arguments:
        inputs: video [B, T, H, W, 3].
        states: dict of states, or None for a fresh clip.
        training: BatchNorm and stochastic depth mode.

    Returns:
        (features [B, 1, 1, 1, head_filters], new_states); new_states is empty
        unless causal.
    """

    def __init__(self, block_specs, causal=False, conv_type="3d", se_type="3d",
                 activation="swish", gating_activation="sigmoid", use_positional_encoding=False,
                 stochastic_depth_drop_rate=0.0, batch_norm_momentum=0.99,
                 batch_norm_epsilon=1e-3, kernel_l2=0.0, **kwargs):
        super().__init__(**kwargs)
        if conv_type not in CONV_TYPES:
            raise ValueError(f"Unknown conv_type {conv_type!r}; expected one of {CONV_TYPES}.")
        if se_type not in SE_TYPES:
            raise ValueError(f"Unknown se_type {se_type!r}; expected one of {SE_TYPES}.")
        if use_positional_encoding and not causal:
            raise ValueError("use_positional_encoding needs a causal (stream) model.")
        self.spec = specs_lib.parse_spec(block_specs)
        self.block_specs = specs_lib.format_spec(self.spec)
        self.causal = bool(causal)
        self.conv_type = conv_type
        self.se_type = se_type
        self.activation = activation
        self.gating_activation = gating_activation
        self.use_positional_encoding = bool(use_positional_encoding)
        self.stochastic_depth_drop_rate = float(stochastic_depth_drop_rate)
        self.batch_norm_momentum = batch_norm_momentum
        self.batch_norm_epsilon = batch_norm_epsilon
        self.kernel_l2 = float(kernel_l2)
        common = dict(batch_norm_momentum=batch_norm_momentum,
                      batch_norm_epsilon=batch_norm_epsilon, kernel_l2=kernel_l2)
        self.stem = CausalConv3D(self.spec.stem_filters, (1, 3, 3), (1, 2, 2),
                                 conv_type=conv_type, activation=activation, name="stem", **common)
        self.blocks = []
        in_filters = self.spec.stem_filters
        index, total = 0, self.spec.num_layers
        for b, block in enumerate(self.spec.blocks):
            for l, layer in enumerate(block.layers):
                index += 1
                self.blocks.append(MovinetBlock(
                    in_filters, block.out_filters, layer.expand_filters, layer.kernel_size,
                    layer.strides, conv_type=conv_type, se_type=se_type, causal=causal,
                    use_positional_encoding=use_positional_encoding, activation=activation,
                    gating_activation=gating_activation,
                    stochastic_depth_rate=self.stochastic_depth_drop_rate * index / total,
                    state_prefix=f"state_block{b}_layer{l}", name=f"block{b}_layer{l}", **common))
                in_filters = block.out_filters
        self.head_project = CausalConv3D(self.spec.head_filters, 1, activation=activation,
                                         name="head_project", **common)
        self.head_pool = CumulativeGlobalAveragePooling3D(
            causal=False, stateful=causal, state_prefix="state_head", name="head_pool")

    def build(self, input_shape):
        self.stem.build((None, None, None, None, 3))
        for block in self.blocks:
            block.build((None, None, None, None, block.in_filters))
        self.head_project.build((None, None, None, None, self.blocks[-1].out_filters))
        self.head_pool.build(None)

    def call(self, inputs, states=None, training=None):
        new_states = {}
        x, _ = self.stem(inputs, training=training)
        for block in self.blocks:
            x, block_states = block(x, states=states, training=training)
            new_states.update(block_states)
        x, _ = self.head_project(x, training=training)
        x, pool_states = self.head_pool(x, states=states)
        new_states.update(pool_states)
        return x, new_states

    def state_specs(self, video_shape, dtype=tf.float32):
        """Streaming states for a video of shape [B, T, H, W, 3].

        Dims may be ints, None or scalar tensors. Returns dict name -> StateSpec,
        in the order the layers use them.
        """
        if not self.causal:
            return {}
        batch, height, width = video_shape[0], video_shape[2], video_shape[3]
        _, (batch, height, width, channels) = self.stem.state_specs(
            (batch, None, height, width, 3), dtype)
        specs = {}
        for block in self.blocks:
            block_specs, (batch, height, width, channels) = block.state_specs(
                (batch, None, height, width, channels), dtype)
            specs.update(block_specs)
        specs.update(self.head_pool.state_specs(batch, self.spec.head_filters, dtype))
        return specs

    def get_config(self):
        config = super().get_config()
        config.update(
            block_specs=self.block_specs, causal=self.causal, conv_type=self.conv_type,
            se_type=self.se_type, activation=self.activation,
            gating_activation=self.gating_activation,
            use_positional_encoding=self.use_positional_encoding,
            stochastic_depth_drop_rate=self.stochastic_depth_drop_rate,
            batch_norm_momentum=self.batch_norm_momentum,
            batch_norm_epsilon=self.batch_norm_epsilon, kernel_l2=self.kernel_l2)
        return config


_BACKBONE_ARGS = ("causal", "conv_type", "se_type", "activation", "gating_activation",
                  "use_positional_encoding", "stochastic_depth_drop_rate", "batch_norm_momentum",
                  "batch_norm_epsilon", "kernel_l2")


@keras.saving.register_keras_serializable(package="movinet_tf")
class MovinetClassifier(keras.Model):
    """A MoViNet video classifier: backbone + classifier head.

    See the module docstring for the calling conventions. Build one with
    `movinet_tf.build_model`.

    Args:
        block_specs: the architecture as a spec string.
        num_classes: number of classes.
        classifier_activation: activation of the classifier's hidden layer.
        dropout_rate: dropout before the last layer.
        input_video_shape: [T, H, W, 3] the model is meant for; None dims are
            free. Used to build and to check inputs.
        model_id: name of the published architecture, if any (informational).
        **backbone_args: the `MovinetBackbone` arguments.
    """

    def __init__(self, block_specs, num_classes=600, classifier_activation="swish",
                 dropout_rate=0.0, input_video_shape=(None, None, None, 3), model_id=None,
                 causal=False, conv_type="3d", se_type="3d", activation="swish",
                 gating_activation="sigmoid", use_positional_encoding=False,
                 stochastic_depth_drop_rate=0.0, batch_norm_momentum=0.99,
                 batch_norm_epsilon=1e-3, kernel_l2=0.0, **kwargs):
        super().__init__(**kwargs)
        self.model_id = model_id
        self.input_video_shape = tuple(input_video_shape)
        if len(self.input_video_shape) != 4 or self.input_video_shape[-1] != 3:
            raise ValueError(
                f"input_shape must be (T, H, W, 3) with None for free dims, got {input_video_shape}.")
        self.backbone = MovinetBackbone(
            block_specs, causal=causal, conv_type=conv_type, se_type=se_type,
            activation=activation, gating_activation=gating_activation,
            use_positional_encoding=use_positional_encoding,
            stochastic_depth_drop_rate=stochastic_depth_drop_rate,
            batch_norm_momentum=batch_norm_momentum, batch_norm_epsilon=batch_norm_epsilon,
            kernel_l2=kernel_l2, name="backbone")
        self.classifier_head = ClassifierHead(
            num_classes, self.backbone.spec.classifier_filters, activation=classifier_activation,
            dropout_rate=dropout_rate, kernel_l2=kernel_l2, name="classifier_head")
        self.num_classes = int(num_classes)
        self.classifier_activation = classifier_activation
        self.dropout_rate = float(dropout_rate)

    @property
    def causal(self):
        return self.backbone.causal

    @property
    def is_stream(self):
        """True when the model can stream (it is causal and has states)."""
        return self.backbone.causal

    def build(self, input_shape=None):
        self.backbone.build((None,) + self.input_video_shape)
        self.classifier_head.build((None, 1, 1, 1, self.backbone.spec.head_filters))
        self.built = True

    def _check_video(self, video, where):
        shape = tf.TensorShape(video.shape)
        if shape.rank != 5:
            raise ValueError(
                f"{where}: video must be [B, T, H, W, 3], got rank {shape.rank} shape {shape}.")
        if shape[-1] is not None and shape[-1] != 3:
            raise ValueError(f"{where}: video must have 3 (RGB) channels, got shape {shape}.")
        for axis, (got, want) in enumerate(zip(shape.as_list()[1:], self.input_video_shape)):
            if got is not None and want is not None and got != want and axis > 0:
                raise ValueError(
                    f"{where}: this model was built for input_shape {self.input_video_shape}, "
                    f"got video shape {shape}.")

    def call(self, inputs, training=None):
        if isinstance(inputs, dict):
            if "image" not in inputs:
                raise ValueError(
                    "A stream call takes {'image': frames, **states}; the key 'image' is missing.")
            if not self.causal:
                raise ValueError(
                    "This is a base (non-causal) model: it has no states. Call model(video), "
                    "or build with stream=True to stream.")
            video = inputs["image"]
            self._check_video(video, "model({..., 'image': frames})")
            states = {k: v for k, v in inputs.items() if k != "image"}
            specs = self.state_specs(video.shape)
            states_lib.check_states(states, {k: states_lib.to_tensor_spec(k, s)
                                             for k, s in specs.items()}, "stream call")
            features, new_states = self.backbone(video, states=states, training=training)
            return self.classifier_head(features, training=training), new_states
        self._check_video(inputs, "model(video)")
        features, _ = self.backbone(inputs, training=training)
        return self.classifier_head(features, training=training)

    def state_specs(self, video_shape=None):
        """The streaming states for a video shape [B, T, H, W, 3] (T is unused).

        Returns:
            dict name -> tf.TensorSpec. Empty for base models.
        """
        specs = self._state_shapes(video_shape)
        return {name: states_lib.to_tensor_spec(name, spec) for name, spec in specs.items()}

    def _state_shapes(self, video_shape):
        if video_shape is None:
            video_shape = (1,) + self.input_video_shape
        if isinstance(video_shape, tf.TensorShape):
            video_shape = video_shape.as_list()
        if isinstance(video_shape, (tf.Tensor, tf.Variable)):
            video_shape = [video_shape[i] for i in range(5)]
        video_shape = [int(d) if isinstance(d, (int,)) or hasattr(d, "__index__")
                       and not isinstance(d, tf.Tensor) else d for d in video_shape]
        if len(video_shape) != 5:
            raise ValueError(f"video_shape must be [B, T, H, W, 3], got {video_shape}.")
        return self.backbone.state_specs(video_shape, self.compute_dtype)

    def init_states(self, video_shape=None):
        """Zero states to start a stream, for a video shape [B, T, H, W, 3].

        Args:
            video_shape: a list, tuple or int tensor of 5 dims (T is unused).
                Defaults to a batch of 1 at the model's input_shape.

        Returns:
            dict name -> zero tensor, with the published state names.

        Raises:
            ValueError: for a base (non-causal) model, or unknown H/W.
        """
        if not self.causal:
            raise ValueError("init_states: a base (non-causal) model has no states; "
                             "build with stream=True.")
        specs = self._state_shapes(video_shape)
        states = {}
        for name, spec in specs.items():
            if any(d is None for d in spec.shape):
                raise ValueError(
                    f"init_states: state {name!r} has unknown dims {spec.shape}; pass a full "
                    "video_shape [B, T, H, W, 3].")
            states[name] = tf.zeros(spec.shape, spec.dtype)
        return states

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        backbone = self.backbone.get_config()
        for key in ("block_specs",) + _BACKBONE_ARGS:
            config[key] = backbone[key]
        config.update(num_classes=self.num_classes,
                      classifier_activation=self.classifier_activation,
                      dropout_rate=self.dropout_rate,
                      input_video_shape=self.input_video_shape, model_id=self.model_id)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


_STREAM_CLASSIFIER_ACTIVATION = {
    "a0": "swish", "a1": "hard_swish", "a2": "swish", "a3": "swish", "a4": "hard_swish",
    "a5": "swish", "t0": "hard_swish",
}
_STREAM_POSITIONAL_ENCODING = ("a3", "a4", "a5")


def variant_defaults(model_id, stream):
    """The settings of the released base or stream variant of `model_id`."""
    if stream:
        return dict(causal=True, conv_type="2plus1d", se_type="2plus3d", activation="hard_swish",
                    gating_activation="hard_sigmoid",
                    classifier_activation=_STREAM_CLASSIFIER_ACTIVATION.get(model_id, "swish"),
                    use_positional_encoding=model_id in _STREAM_POSITIONAL_ENCODING)
    return dict(causal=False, conv_type="3d", se_type="3d", activation="swish",
                gating_activation="sigmoid", classifier_activation="swish",
                use_positional_encoding=False)


def build_model(model_id, *, stream=False, num_classes=600, conv_type=None, se_type=None,
                activation=None, gating_activation=None, classifier_activation=None,
                use_positional_encoding=None, dropout_rate=0.2, stochastic_depth_drop_rate=0.2,
                input_shape=None, kernel_l2=0.0, block_specs=None, batch_norm_momentum=0.99,
                batch_norm_epsilon=1e-3, dtype=None):
    """Builds a MoViNet classifier, with the weights created.

    Args:
        model_id: 'a0' ... 'a5' or 't0' (see `MODEL_IDS`), or a name for a custom
            `block_specs`.
        stream: the released streaming variant: causal, '2plus1d' convs,
            '2plus3d' SE, hard_swish / hard_sigmoid, positional encoding for
            a3-a5, and the classifier activation of the released checkpoint.
            False gives the base variant ('3d', '3d' SE, swish / sigmoid).
        num_classes: number of classes (600 for Kinetics-600).
        conv_type, se_type, activation, gating_activation, classifier_activation,
        use_positional_encoding: override the variant's setting (None keeps it).
        dropout_rate: dropout before the classifier's last layer.
        stochastic_depth_drop_rate: stochastic depth rate of the last layer.
        input_shape: (T, H, W, 3) with None for free dims; default all free.
        kernel_l2: L2 factor on conv kernels (training; the official recipe uses
            1.5e-5, half of its "3e-5" weight decay).
        block_specs: a spec string, replacing the architecture of `model_id`.
        batch_norm_momentum, batch_norm_epsilon: BatchNorm settings.
        dtype: a Keras dtype policy name, e.g. 'mixed_float16'.

    Returns:
        A built `MovinetClassifier`.

    Raises:
        ValueError: for an unknown model id (listing the valid ones) or a bad
            override.
    """
    if block_specs is None:
        block_specs = specs_lib.MODEL_SPECS.get(model_id)
        if block_specs is None:
            raise ValueError(f"Unknown model id {model_id!r}; expected one of "
                             f"{', '.join(specs_lib.MODEL_IDS)} (or pass block_specs).")
    settings = variant_defaults(model_id, stream)
    overrides = dict(conv_type=conv_type, se_type=se_type, activation=activation,
                     gating_activation=gating_activation,
                     classifier_activation=classifier_activation,
                     use_positional_encoding=use_positional_encoding)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if input_shape is None:
        input_shape = (None, None, None, 3)
    suffix = "stream" if stream else "base"
    model = MovinetClassifier(
        block_specs, num_classes=num_classes, dropout_rate=dropout_rate,
        stochastic_depth_drop_rate=stochastic_depth_drop_rate, input_video_shape=input_shape,
        model_id=model_id, kernel_l2=kernel_l2, batch_norm_momentum=batch_norm_momentum,
        batch_norm_epsilon=batch_norm_epsilon, name=f"movinet_{model_id}_{suffix}", dtype=dtype,
        **settings)
    model.build()
    return model
