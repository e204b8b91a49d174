"""The one-shot supernet: every architecture of a search space from one set of weights.

The supernet holds, for every layer slot of the space, the weights of its
largest choice: the widest stem, block, expansion and head, and a kernel as
large as the largest choice in each of t, h and w. A sampled architecture (a
`ModelSpec` of the space) runs from slices of them:

* channels: the first ``c`` input / output channels of every kernel, bias and
  BatchNorm (for the '2plus3d' squeeze-excitation, whose input is two halves of
  the expansion width, the first ``c`` of each half);
* kernels: the centre crop of the largest kernel in t, h and w;
* depth: layer slots past the sampled number of layers are skipped.

Which weights an architecture has, their names and shapes, are asked of the
standalone model's own layers (``weight_shapes()`` of `MovinetBlock` and the
others, constructed from `movinet.layer_arguments` without weights), so a new
layer option needs no second description here; the convolutions, time padding,
running means and skip pools are the functions of `movinet_tf.layers.ops`.

The forward pass mirrors `MovinetClassifier` op for op, so a standalone model
built from the same spec with the sliced weights copied in (`copy_to_model`)
gives the same logits. It runs eagerly (the spec is a Python object, each step a
new architecture); `nas.traced.TracedSupernet` computes the same thing for every
architecture with one traced graph, and is what the search trains and scores with.

BatchNorm: in training the batch statistics are used and, when
``update_stats=True``, the moving statistics of the active channels are updated.
Rewards can be computed with batch statistics (``batch_stats=True``, no
dropout) or, after `recalibrate`, with statistics measured for the one
architecture: moving statistics shared by different architectures describe none
of them.
"""
import functools

import keras
import numpy as np
import tensorflow as tf

from movinet_tf.layers import ops
from movinet_tf.layers.activations import get_activation
from movinet_tf.layers.attention import SE_TYPES, se_hidden_filters
from movinet_tf.layers.blocks import ClassifierHead, MovinetBlock
from movinet_tf.layers.conv import CONV_TYPES, CausalConv3D, with_prefix
from movinet_tf.layers.ops import dims
from movinet_tf.models import movinet as movinet_lib
from movinet_tf.models import specs as specs_lib

_BN_PARTS = ("gamma", "beta", "moving_mean", "moving_variance")


# Arguments that do not change a layer's weights, and the values the cache key gives them.
_SHAPE_FREE_ARGUMENTS = {"name": "layer", "state_prefix": "state", "stochastic_depth_rate": 0.0}


def _layer_shapes(layer_class, arguments, *in_channels):
    """`layer_class(**arguments).weight_shapes(*in_channels)`, cached (see `_cached_shapes`)."""
    key = tuple(sorted((k, _SHAPE_FREE_ARGUMENTS.get(k, v)) for k, v in arguments.items()))
    return _cached_shapes(layer_class, key, in_channels)


@functools.lru_cache(maxsize=4096)
def _cached_shapes(layer_class, arguments, in_channels):
    # Constructing Keras layers takes milliseconds, and every step samples a new architecture.
    return layer_class(**dict(arguments)).weight_shapes(*in_channels)


def _slice(weight, slot):
    """The part of a supernet weight that a standalone model's weight of `slot` takes.

    Kernels [kt, kh, kw, Cin, Cout]: the centre crop in t, h, w, the first Cout
    output channels and the first Cin / g input channels of each of the
    `slot.input_groups` (g) equal groups; vectors: the first entries; scalars: all.
    """
    shape = slot.shape
    if len(shape) == 0:
        return weight
    if len(shape) == 1:
        return weight[:shape[0]]
    weight = _crop(weight, shape[:3])[..., :shape[4]]
    groups = slot.input_groups
    full, part = weight.shape[3] // groups, shape[3] // groups
    if groups == 1:
        return weight[:, :, :, :part]
    return tf.concat([weight[:, :, :, g * full:g * full + part] for g in range(groups)], axis=3)


def _crop(kernel, size):
    """Centre crop of a [kt, kh, kw, ...] kernel to `size` (t, h, w)."""
    starts = [(full - want) // 2 for full, want in zip(kernel.shape[:3], size)]
    return kernel[starts[0]:starts[0] + size[0], starts[1]:starts[1] + size[1],
                  starts[2]:starts[2] + size[2]]


class Supernet(keras.layers.Layer):
    """Shared weights for every architecture of a `SearchSpace`.

    Args:
        space: the `SearchSpace`.
        num_classes: classifier outputs.
        causal: causal convolutions and squeeze-excitation (stream models).
        conv_type: '3d', '2plus1d' or '3d_2plus1d'.
        se_type: '3d', '2d', '2plus3d' or 'none'.
        activation, gating_activation, classifier_activation: activation names.
        dropout_rate: dropout before the classifier's last layer.
        batch_norm_momentum, batch_norm_epsilon: BatchNorm settings.

    `forward` arguments (a plain method: the spec is not a tensor):
        video: [B, T, H, W, 3] floats in [0, 1].
        spec: the architecture, a `ModelSpec` of the space.
        training: batch statistics and dropout.
        update_stats: also update the moving statistics (weight training).
        batch_stats: normalise with batch statistics; default `training`
            (``training=False, batch_stats=True`` scores an architecture
            without dropout and without shared moving statistics).

    Returns:
        logits [B, num_classes], float32.
    """

    def __init__(self, space, num_classes, causal=True, conv_type="2plus1d", se_type="2plus3d",
                 activation="hard_swish", gating_activation="hard_sigmoid",
                 classifier_activation="hard_swish", dropout_rate=0.0, batch_norm_momentum=0.99,
                 batch_norm_epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        if conv_type not in CONV_TYPES:
            raise ValueError(f"Unknown conv_type {conv_type!r}; expected one of {CONV_TYPES}.")
        if se_type not in SE_TYPES:
            raise ValueError(f"Unknown se_type {se_type!r}; expected one of {SE_TYPES}.")
        self.space = space
        self.num_classes = int(num_classes)
        self.causal = bool(causal)
        self.conv_type = conv_type
        self.se_type = se_type
        self.act = get_activation(activation)
        self.gate_act = get_activation(gating_activation)
        self.classifier_act = get_activation(classifier_activation)
        self.dropout_rate = float(dropout_rate)
        self.momentum = float(batch_norm_momentum)
        self.epsilon = float(batch_norm_epsilon)
        self.w = {}
        self._largest = space.largest()
        self._create_weights()

    # ------------------------------------------------------------ weights

    def _kernel(self, name, shape, initializer="he_normal"):
        self.w[name] = self.add_weight(name=name.replace("/", "."), shape=shape,
                                       initializer=initializer)

    def _bias(self, name, size):
        self.w[name] = self.add_weight(name=name.replace("/", "."), shape=(size,),
                                       initializer="zeros")

    def _bn(self, name, size):
        inits = {"gamma": "ones", "beta": "zeros", "moving_mean": "zeros",
                 "moving_variance": "ones"}
        for part in _BN_PARTS:
            self.w[f"{name}/{part}"] = self.add_weight(
                name=f"{name}.{part}".replace("/", "."), shape=(size,), initializer=inits[part],
                trainable=part in ("gamma", "beta"))

    def _create_weights(self):
        largest = self._largest
        kt, kh, kw = largest["kernel"]
        self._kernel("stem/kernel", (1, 3, 3, 3, largest["stem"]))
        self._bn("stem/bn", largest["stem"])
        in_max = largest["stem"]
        for b in range(self.space.num_blocks):
            out_max, expand_max = largest["blocks"][b], largest["expand"][b]
            for l in range(self.space.max_layers[b]):
                prefix = f"block{b}_layer{l}"
                cin = in_max if l == 0 else out_max
                self._kernel(f"{prefix}/expansion/kernel", (1, 1, 1, cin, expand_max))
                self._bn(f"{prefix}/expansion/bn", expand_max)
                if self.conv_type == "3d":
                    self._kernel(f"{prefix}/feature/kernel", (kt, kh, kw, 1, expand_max))
                else:
                    self._kernel(f"{prefix}/feature/kernel", (1, kh, kw, 1, expand_max))
                    self._kernel(f"{prefix}/feature/temporal_kernel", (kt, 1, 1, 1, expand_max))
                    self._bn(f"{prefix}/feature/bn_temporal", expand_max)
                self._bn(f"{prefix}/feature/bn", expand_max)
                if self.se_type != "none":
                    pooled = 2 * expand_max if self.se_type == "2plus3d" else expand_max
                    hidden = se_hidden_filters(expand_max, self.se_type)
                    self._kernel(f"{prefix}/se/se_reduce/kernel", (1, 1, 1, pooled, hidden))
                    self._bias(f"{prefix}/se/se_reduce/bias", hidden)
                    self._kernel(f"{prefix}/se/se_expand/kernel", (1, 1, 1, hidden, expand_max))
                    self._bias(f"{prefix}/se/se_expand/bias", expand_max)
                self._kernel(f"{prefix}/projection/kernel", (1, 1, 1, expand_max, out_max))
                self._bn(f"{prefix}/projection/bn", out_max)
                self.w[f"{prefix}/rezero/scale"] = self.add_weight(
                    name=f"{prefix}.rezero.scale", shape=(), initializer="zeros")
                if l == 0:
                    self._kernel(f"{prefix}/skip/projection/kernel", (1, 1, 1, cin, out_max))
                    self._bn(f"{prefix}/skip/projection/bn", out_max)
            in_max = out_max
        head, hidden = largest["head"], largest["classifier"]
        self._kernel("head_project/kernel", (1, 1, 1, in_max, head))
        self._bn("head_project/bn", head)
        self._kernel("classifier_head/hidden/kernel", (1, 1, 1, head, hidden))
        self._bias("classifier_head/hidden/bias", hidden)
        self._kernel("classifier_head/classifier/kernel", (1, 1, 1, hidden, self.num_classes),
                     keras.initializers.RandomNormal(stddev=0.01))
        self._bias("classifier_head/classifier/bias", self.num_classes)

    def build(self, input_shape=None):
        self.built = True

    # ------------------------------------------------------------ slicing

    def _weight_shapes(self, spec):
        """name -> `WeightShape` of every weight of the standalone model of `spec`.

        Asked of the model's own layers (`movinet.layer_arguments`), constructed
        but not built: the names are the paths of the standalone model's weights
        below ``backbone/`` or ``classifier_head/`` (see `copy_to_model`).
        """
        options = movinet_lib.BackboneOptions(causal=self.causal, conv_type=self.conv_type,
                                              se_type=self.se_type)
        arguments = movinet_lib.layer_arguments(spec, options)
        shapes = with_prefix("stem/", _layer_shapes(CausalConv3D, arguments["stem"], 3))
        for block in arguments["blocks"]:
            shapes.update(with_prefix(block["name"] + "/", _layer_shapes(MovinetBlock, block)))
        shapes.update(with_prefix("head_project/", _layer_shapes(
            CausalConv3D, arguments["head_project"], arguments["blocks"][-1]["out_filters"])))
        head = dict(num_classes=self.num_classes, hidden_filters=spec.classifier_filters)
        shapes.update(with_prefix("classifier_head/",
                                  _layer_shapes(ClassifierHead, head, spec.head_filters)))
        return shapes

    def weight_shapes(self, spec):
        """name -> `WeightShape` of the standalone model of `spec` (a `ModelSpec` or spec string)."""
        return self._weight_shapes(self._check_spec(spec))

    def sliced_weights(self, spec):
        """name -> tensor: the weights of the standalone model for `spec`."""
        spec = self._check_spec(spec)
        return {name: _slice(self.w[name], slot)
                for name, slot in self._weight_shapes(spec).items()}

    def _check_spec(self, spec):
        if isinstance(spec, str):
            spec = specs_lib.parse_spec(spec)
        self.space.encode(spec)  # raises ValueError naming what is outside the space
        return spec

    def copy_to_model(self, spec, model):
        """Copies the sliced weights of `spec` into a standalone model built from it.

        Args:
            spec: the architecture (`ModelSpec` or spec string).
            model: a built `MovinetClassifier` whose block_specs is `spec`, with the
                supernet's conv_type, se_type and number of classes.

        Raises:
            ValueError: if the model does not match (a shape or a weight differs).
        """
        spec = self._check_spec(spec)
        if model.backbone.spec != spec:
            raise ValueError("copy_to_model: the model was built from another spec.")
        targets = {}
        for weight in model.weights:
            path = weight.path
            for root in ("/backbone/", "/classifier_head/"):
                if root in path:
                    tail = path.split(root, 1)[1]
                    targets[tail if root == "/backbone/" else f"classifier_head/{tail}"] = weight
        sliced = self.sliced_weights(spec)
        missing = sorted(set(targets) - set(sliced))
        if missing:
            raise ValueError(f"copy_to_model: the model has weights the supernet does not "
                             f"provide, e.g. {missing[:3]} (is positional encoding on?).")
        for name, value in sliced.items():
            if name not in targets:
                raise ValueError(f"copy_to_model: the model has no weight {name!r}; was it built "
                                 f"with conv_type={self.conv_type!r}, se_type={self.se_type!r}?")
            if tuple(targets[name].shape) != tuple(value.shape):
                raise ValueError(f"copy_to_model: weight {name!r} has shape "
                                 f"{tuple(targets[name].shape)}, the supernet slice "
                                 f"{tuple(value.shape)}.")
            targets[name].assign(value)

    # ------------------------------------------------------------ forward

    def _norm(self, x, name, batch_stats, update_stats):
        size = x.shape[-1]
        gamma, beta = self.w[f"{name}/gamma"][:size], self.w[f"{name}/beta"][:size]
        if batch_stats:
            mean, variance = tf.nn.moments(x, axes=[0, 1, 2, 3])
            if update_stats:
                for part, batch_value in (("moving_mean", mean), ("moving_variance", variance)):
                    var = self.w[f"{name}/{part}"]
                    old = var[:size]
                    new = old * self.momentum + tf.stop_gradient(batch_value) * (1 - self.momentum)
                    var.assign(tf.concat([new, var[size:]], axis=0))
        else:
            mean = self.w[f"{name}/moving_mean"][:size]
            variance = self.w[f"{name}/moving_variance"][:size]
        return tf.nn.batch_normalization(x, mean, variance, beta, gamma, self.epsilon)

    def _conv(self, x, kernel, strides_hw=(1, 1), depthwise=False):
        """A (kt, kh, kw) conv with the models' time padding and TF 'SAME' in space."""
        num_frames = dims(x)[1]
        x = ops.pad_time(x, kernel.shape[0], self.causal)
        return ops.conv_time(x, kernel, strides_hw, depthwise, num_frames)

    def forward(self, video, spec, training=False, update_stats=False, batch_stats=None):
        """Logits [B, num_classes] of architecture `spec` (see the class docstring)."""
        spec = self._check_spec(spec)
        weights = self.sliced_weights(spec)
        batch_stats = training if batch_stats is None else batch_stats
        norm = lambda x, name: self._norm(x, name, batch_stats, update_stats)  # noqa: E731
        x = tf.convert_to_tensor(video, tf.float32)
        x = self.act(norm(self._conv(x, weights["stem/kernel"], (2, 2)), "stem/bn"))
        for b, block in enumerate(spec.blocks):
            for l, layer in enumerate(block.layers):
                prefix = f"block{b}_layer{l}"
                stride = layer.spatial_stride
                h = self._conv(x, weights[f"{prefix}/expansion/kernel"])
                h = self.act(norm(h, f"{prefix}/expansion/bn"))
                h = self.act(norm(self._conv(h, weights[f"{prefix}/feature/kernel"],
                                             (stride, stride), depthwise=True),
                                  f"{prefix}/feature/bn"))
                if f"{prefix}/feature/temporal_kernel" in weights:
                    h = self._conv(h, weights[f"{prefix}/feature/temporal_kernel"],
                                   depthwise=True)
                    h = self.act(norm(h, f"{prefix}/feature/bn_temporal"))
                if self.se_type != "none":
                    h = self._squeeze_excite(h, weights, prefix)
                h = norm(self._conv(h, weights[f"{prefix}/projection/kernel"]),
                         f"{prefix}/projection/bn")
                h = h * weights[f"{prefix}/rezero/scale"]
                shortcut = x
                if f"{prefix}/skip/projection/kernel" in weights:
                    if stride != 1:
                        shortcut = ops.average_pool_3x3(x, (stride, stride))
                    shortcut = norm(self._conv(shortcut,
                                               weights[f"{prefix}/skip/projection/kernel"]),
                                    f"{prefix}/skip/projection/bn")
                x = h + shortcut
        x = self.act(norm(self._conv(x, weights["head_project/kernel"]), "head_project/bn"))
        return self.classify(x, weights, training)

    def classify(self, features, weights, training, hidden_mask=None):
        """Logits [B, num_classes] from the head's features [B, T, H, W, C]: pooled over
        space and time, then the classifier (``weights`` as from `sliced_weights`).

        hidden_mask: [hidden] 1 for the classifier's used hidden channels, 0 for
        the rest (the traced graph, which holds the widest classifier); None: all.
        """
        x = ops.cumulative_mean(tf.reduce_mean(features, axis=[2, 3], keepdims=True),
                                causal=False)
        x = self._conv(x, weights["classifier_head/hidden/kernel"])
        x = self.classifier_act(x + weights["classifier_head/hidden/bias"])
        if hidden_mask is not None:
            x = x * hidden_mask
        if training and self.dropout_rate > 0:
            x = tf.nn.dropout(x, self.dropout_rate)
        x = self._conv(x, weights["classifier_head/classifier/kernel"])
        x = x + weights["classifier_head/classifier/bias"]
        return tf.cast(tf.reshape(x, [-1, self.num_classes]), tf.float32)

    def _squeeze_excite(self, x, weights, prefix):
        frame_means = tf.reduce_mean(x, axis=[2, 3], keepdims=True)  # [B, T, 1, 1, C]
        if self.se_type == "2d":
            pooled = frame_means
        else:
            pooled = ops.cumulative_mean(frame_means, self.causal)
            if self.se_type == "2plus3d":
                if not self.causal:
                    pooled = tf.broadcast_to(pooled, tf.shape(frame_means))
                pooled = tf.concat([pooled, frame_means], axis=-1)
        hidden = self.act(self._conv(pooled, weights[f"{prefix}/se/se_reduce/kernel"])
                          + weights[f"{prefix}/se/se_reduce/bias"])
        gate = self.gate_act(self._conv(hidden, weights[f"{prefix}/se/se_expand/kernel"])
                             + weights[f"{prefix}/se/se_expand/bias"])
        return gate * x

    def recalibrate(self, spec, video):
        """Sets the moving BatchNorm statistics of `spec`'s channels to those of one batch.

        The statistics of a shared BatchNorm describe no single architecture;
        after this call, ``forward(..., training=False)`` normalises `spec` with
        statistics measured on `video` ([B, T, H, W, 3], e.g. a few training
        batches joined), as a standalone model would at inference. Other
        channels keep their values.
        """
        saved = self.momentum
        self.momentum = 0.0
        try:
            self.forward(video, spec, batch_stats=True, update_stats=True)
        finally:
            self.momentum = saved

    def num_shared_params(self):
        return int(sum(np.prod(w.shape) for w in self.trainable_weights))
