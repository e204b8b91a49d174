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
import dataclasses

import keras
import tensorflow as tf

from movinet_tf.layers import states as states_lib
from movinet_tf.layers.activations import get_activation
from movinet_tf.layers.attention import SE_TYPES
from movinet_tf.layers.blocks import ClassifierHead, MovinetBlock
from movinet_tf.layers.conv import CONV_TYPES, CausalConv3D
from movinet_tf.layers.pooling import CumulativeGlobalAveragePooling3D
from movinet_tf.models import specs as specs_lib


@dataclasses.dataclass(frozen=True)
class BackboneOptions:
    """How a MoViNet backbone computes: everything but the architecture (the spec).

    One frozen value travels from `build_model` through `MovinetClassifier` to
    `MovinetBackbone`. In a Keras config its fields are stored as flat keys
    beside ``block_specs`` (the format of every saved `.keras` file).

    Attributes:
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
    """
    causal: bool = False
    conv_type: str = "3d"
    se_type: str = "3d"
    activation: str = "swish"
    gating_activation: str = "sigmoid"
    use_positional_encoding: bool = False
    stochastic_depth_drop_rate: float = 0.0
    batch_norm_momentum: float = 0.99
    batch_norm_epsilon: float = 1e-3
    kernel_l2: float = 0.0

    def __post_init__(self):
        if self.conv_type not in CONV_TYPES:
            raise ValueError(f"Unknown conv_type {self.conv_type!r}; expected one of {CONV_TYPES}.")
        if self.se_type not in SE_TYPES:
            raise ValueError(f"Unknown se_type {self.se_type!r}; expected one of {SE_TYPES}.")
        if self.use_positional_encoding and not self.causal:
            raise ValueError("use_positional_encoding needs a causal (stream) model.")
        get_activation(self.activation)
        get_activation(self.gating_activation)
        # Normalise the types, so that equal options compare and serialise equal.
        for name, kind in (("causal", bool), ("use_positional_encoding", bool),
                           ("stochastic_depth_drop_rate", float), ("kernel_l2", float)):
            object.__setattr__(self, name, kind(getattr(self, name)))

    @classmethod
    def field_names(cls):
        return tuple(field.name for field in dataclasses.fields(cls))

    def to_config(self):
        """The fields as a dict of plain values (the flat keys of a Keras config)."""
        return dataclasses.asdict(self)

    @classmethod
    def split_config(cls, config):
        """Splits a flat Keras config into (BackboneOptions, the other keys)."""
        names = cls.field_names()
        options = cls(**{k: v for k, v in config.items() if k in names})
        return options, {k: v for k, v in config.items() if k not in names}


def layer_arguments(spec, options):
    """The constructor arguments of a backbone's layers, from its spec and options.

    Returns:
        dict with ``stem`` and ``head_project`` (`CausalConv3D` keyword
        arguments) and ``blocks`` (a list of `MovinetBlock` keyword arguments, in
        order). `MovinetBackbone` is built from them; the NAS supernet asks the
        same layers for their weight shapes.
    """
    common = dict(batch_norm_momentum=options.batch_norm_momentum,
                  batch_norm_epsilon=options.batch_norm_epsilon, kernel_l2=options.kernel_l2)
    stem = dict(filters=spec.stem_filters, kernel_size=(1, 3, 3), strides=(1, 2, 2),
                conv_type=options.conv_type, activation=options.activation, name="stem", **common)
    blocks = []
    in_filters = spec.stem_filters
    index, total = 0, spec.num_layers
    for b, block in enumerate(spec.blocks):
        for l, layer in enumerate(block.layers):
            index += 1
            blocks.append(dict(
                in_filters=in_filters, out_filters=block.out_filters,
                expand_filters=layer.expand_filters, kernel_size=layer.kernel_size,
                strides=layer.strides, conv_type=options.conv_type, se_type=options.se_type,
                causal=options.causal, use_positional_encoding=options.use_positional_encoding,
                activation=options.activation, gating_activation=options.gating_activation,
                stochastic_depth_rate=options.stochastic_depth_drop_rate * index / total,
                state_prefix=f"state_block{b}_layer{l}", name=f"block{b}_layer{l}", **common))
            in_filters = block.out_filters
    head_project = dict(filters=spec.head_filters, kernel_size=1, activation=options.activation,
                        name="head_project", **common)
    return dict(stem=stem, blocks=blocks, head_project=head_project)


@keras.saving.register_keras_serializable(package="movinet_tf")
class MovinetBackbone(keras.layers.Layer):
    """Stem, inverted-bottleneck blocks and the pooled head of a MoViNet.

    Args:
        block_specs: the architecture as a spec string (see `specs.py`).
        options: a `BackboneOptions` (default: the base variant's).

    Call arguments:
        inputs: video [B, T, H, W, 3].
        states: dict of states, or None for a fresh clip.
        training: BatchNorm and stochastic depth mode.

    Returns:
        (features [B, 1, 1, 1, head_filters], new_states); new_states is empty
        unless causal.
    """

    def __init__(self, block_specs, options=None, **kwargs):
        super().__init__(**kwargs)
        options = options if options is not None else BackboneOptions()
        if not isinstance(options, BackboneOptions):
            raise TypeError(f"options must be a BackboneOptions, got {type(options).__name__}.")
        self.options = options
        self.spec = specs_lib.parse_spec(block_specs)
        self.block_specs = specs_lib.format_spec(self.spec)
        arguments = layer_arguments(self.spec, options)
        self.stem = CausalConv3D(**arguments["stem"])
        self.blocks = [MovinetBlock(**block) for block in arguments["blocks"]]
        self.head_project = CausalConv3D(**arguments["head_project"])
        self.head_pool = CumulativeGlobalAveragePooling3D(
            causal=False, stateful=options.causal, state_prefix="state_head", name="head_pool")

    @property
    def causal(self):
        return self.options.causal

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

    def state_dims(self, input_shape, dtype=tf.float32):
        """The streaming states for a video [B, T, H, W, 3], in the order the layers use them.

        Dims may be ints, None or scalar tensors. Returns dict name ->
        `states.StateDims` (see `states.py`); `state_specs` is its TensorSpec view.
        """
        if not self.causal:
            return {}
        shape = self.stem.output_dims(list(input_shape[:4]) + [3])
        dims_by_name = {}
        for block in self.blocks:
            dims_by_name.update(block.state_dims(shape, dtype))
            shape = block.output_dims(shape)
        shape = self.head_project.output_dims(shape)
        dims_by_name.update(self.head_pool.state_dims(shape, dtype))
        return dims_by_name

    def state_specs(self, input_shape, dtype=tf.float32):
        """dict name -> tf.TensorSpec of the states for a video [B, T, H, W, 3]."""
        return states_lib.to_tensor_specs(self.state_dims(input_shape, dtype))

    def get_config(self):
        config = super().get_config()
        config.update(block_specs=self.block_specs, **self.options.to_config())
        return config

    @classmethod
    def from_config(cls, config):
        options, rest = BackboneOptions.split_config(config)
        return cls(options=options, **rest)


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
        options: the backbone's `BackboneOptions`.
    """

    def __init__(self, block_specs, num_classes=600, classifier_activation="swish",
                 dropout_rate=0.0, input_video_shape=(None, None, None, 3), model_id=None,
                 options=None, **kwargs):
        super().__init__(**kwargs)
        self.model_id = model_id
        self.input_video_shape = tuple(input_video_shape)
        if len(self.input_video_shape) != 4 or self.input_video_shape[-1] != 3:
            raise ValueError(
                f"input_shape must be (T, H, W, 3) with None for free dims, got {input_video_shape}.")
        self.backbone = MovinetBackbone(block_specs, options, name="backbone")
        self.classifier_head = ClassifierHead(
            num_classes, self.backbone.spec.classifier_filters, activation=classifier_activation,
            dropout_rate=dropout_rate, kernel_l2=self.backbone.options.kernel_l2,
            name="classifier_head")
        self.num_classes = int(num_classes)
        self.classifier_activation = classifier_activation
        self.dropout_rate = float(dropout_rate)

    @property
    def options(self):
        return self.backbone.options

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
            states_lib.check_states(states, self.state_specs(video.shape), "stream call")
            features, new_states = self.backbone(video, states=states, training=training)
            return self.classifier_head(features, training=training), new_states
        self._check_video(inputs, "model(video)")
        features, _ = self.backbone(inputs, training=training)
        return self.classifier_head(features, training=training)

    def state_specs(self, input_shape=None, dtype=None):
        """The streaming states for a video shape [B, T, H, W, 3] (T is unused).

        Args:
            input_shape: 5 dims (ints or None); default a batch of 1 at the
                model's input_shape.
            dtype: of the float states; default the model's compute dtype.

        Returns:
            dict name -> tf.TensorSpec (named), in the order the layers use
            them. Empty for base models.
        """
        return states_lib.to_tensor_specs(self.state_dims(input_shape, dtype))

    def state_dims(self, input_shape=None, dtype=None):
        """`state_specs` with dims that may be scalar tensors (see `states.py`).

        Args:
            input_shape: a list, tuple, TensorShape or int tensor of 5 dims.
            dtype: of the float states; default the model's compute dtype.

        Returns:
            dict name -> `states.StateDims`.
        """
        if input_shape is None:
            input_shape = (1,) + self.input_video_shape
        if isinstance(input_shape, tf.TensorShape):
            input_shape = input_shape.as_list()
        if isinstance(input_shape, (tf.Tensor, tf.Variable)):
            input_shape = [input_shape[i] for i in range(5)]
        input_shape = [int(d) if isinstance(d, (int,)) or hasattr(d, "__index__")
                       and not isinstance(d, tf.Tensor) else d for d in input_shape]
        if len(input_shape) != 5:
            raise ValueError(f"video shape must be [B, T, H, W, 3], got {input_shape}.")
        return self.backbone.state_dims(input_shape, dtype or self.compute_dtype)

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
        return states_lib.zeros(self.state_dims(video_shape), "init_states")

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable,
                  "block_specs": self.backbone.block_specs, **self.options.to_config()}
        config.update(num_classes=self.num_classes,
                      classifier_activation=self.classifier_activation,
                      dropout_rate=self.dropout_rate,
                      input_video_shape=self.input_video_shape, model_id=self.model_id)
        return config

    @classmethod
    def from_config(cls, config):
        options, rest = BackboneOptions.split_config(config)
        return cls(options=options, **rest)


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

    The backbone settings above become one `BackboneOptions`, which the
    classifier hands to its backbone (``model.options``).

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
    classifier_activation = settings.pop("classifier_activation")
    options = BackboneOptions(
        stochastic_depth_drop_rate=stochastic_depth_drop_rate, kernel_l2=kernel_l2,
        batch_norm_momentum=batch_norm_momentum, batch_norm_epsilon=batch_norm_epsilon,
        **settings)
    if input_shape is None:
        input_shape = (None, None, None, 3)
    suffix = "stream" if stream else "base"
    model = MovinetClassifier(
        block_specs, num_classes=num_classes, classifier_activation=classifier_activation,
        dropout_rate=dropout_rate, input_video_shape=input_shape, model_id=model_id,
        options=options, name=f"movinet_{model_id}_{suffix}", dtype=dtype)
    model.build()
    return model
