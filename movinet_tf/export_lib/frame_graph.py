"""A single-frame, inference-only copy of a stream MoViNet, written for TFLite.

The Keras model computes every layer on 5-D ``[B, T, H, W, C]`` tensors so that
it can train on clips and stream any number of frames. A phone runs it one
frame at a time in inference mode, where most of that generality is overhead:
reshapes around each 2D conv, BatchNorm as separate multiply/add ops on 5-D
tensors, cumulative sums and ranges over a time axis of length 1.

`FrameGraph` reads the trained weights of a stream model once and computes the
same function for exactly one frame of batch 1, with:

* BatchNorm folded into the preceding conv's kernel and bias, and the ReZero
  scale folded into the projection conv (so each conv is one TFLite op with a
  fused bias);
* every tensor at most 4-D: a frame is ``[1, H, W, C]``, a stream buffer is
  ``[kt - 1, H, W, C]`` (the buffered frames take the batch axis), a pool
  buffer ``[1, 1, 1, C]``;
* the temporal depthwise conv over ``concat(buffer, frame)`` as one
  DEPTHWISE_CONV_2D of a ``kt x 1`` kernel over ``[1, kt, H*W, C]`` (a free
  reshape of the concatenated frames);
* the cumulative means as ``mean + (x - mean) / (n + 1)`` with the frame count n:
  no cumsum or range. These few ops on [1, 1, 1, C] tensors are named under
  `FLOAT_SCOPE`, which an int8 export keeps in float32;
* the skip average pools as a depthwise sum times reciprocal window counts
  (XNNPACK runs that in int8; it has no int8 AVERAGE_POOL_2D).

The states keep the published names. `state_shapes` gives their shapes in two
layouts: ``"published"`` (the Keras model's, e.g. ``[1, kt - 1, H, W, C]``) and
``"gpu"`` (the internal 4-D ones). The TFLite signature converts at the
boundary (see `tflite_export.py`).

Equality with the Keras model's stream call is tested in
``tests/export_lib/test_frame_graph.py``.
"""
import numpy as np
import tensorflow as tf

from movinet_tf.layers.activations import get_activation
from movinet_tf.layers.attention import sinusoid_angles

LAYOUTS = ("published", "gpu")

# Name scope of the ops that an int8 export keeps in float32 (see `tflite_export`): the
# cumulative means, their 1 / (n + 1) weights and the positional encoding.
FLOAT_SCOPE = "float_island"


def _bn_scale_offset(bn):
    """(scale, offset) numpy [C] with bn(x) == x * scale + offset in inference."""
    mean = np.asarray(bn.moving_mean.numpy(), np.float64)
    variance = np.asarray(bn.moving_variance.numpy(), np.float64)
    gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.scale else np.ones_like(mean)
    beta = np.asarray(bn.beta.numpy(), np.float64) if bn.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(variance + bn.epsilon)
    return scale, beta - mean * scale


class _FoldedConv:
    """One 2D conv (dense or depthwise) with its BatchNorm folded in, plus its activation.

    Args:
        kernel: float64 [kh, kw, Cin, Cout] (dense) or [kh, kw, C, 1] (depthwise).
        bias: float64 [Cout].
        strides: (sh, sw).
        depthwise: whether `kernel` is depthwise.
        activation: activation name or None.
    """

    def __init__(self, kernel, bias, strides, depthwise, activation):
        self.kernel = np.asarray(kernel, np.float32)
        self.bias = np.asarray(bias, np.float32)
        self.strides = (1, int(strides[0]), int(strides[1]), 1)
        self.depthwise = depthwise
        self.activation = get_activation(activation)

    def linear(self, x):
        """The conv and bias, without activation: [1, H, W, Cin] -> [1, H', W', Cout]."""
        if self.depthwise:
            y = tf.nn.depthwise_conv2d(x, self.kernel, self.strides, "SAME")
        else:
            y = tf.nn.conv2d(x, self.kernel, self.strides, "SAME")
        return tf.nn.bias_add(y, self.bias)

    def __call__(self, x):
        return self.activation(self.linear(x))


def _fold(kernel_5d_tap, depthwise, bn, conv_bias, strides, activation, extra_scale=1.0):
    """Folds BN (and an extra scalar) into one temporal tap of a 5-D conv kernel.

    Args:
        kernel_5d_tap: numpy [kh, kw, Cin or 1, Cout] (one temporal tap).
        bn: a Keras BatchNormalization or None.
        conv_bias: numpy [Cout] added before the BN, or None.
    """
    kernel = np.asarray(kernel_5d_tap, np.float64)
    cout = kernel.shape[-1]
    bias = np.zeros(cout) if conv_bias is None else np.asarray(conv_bias, np.float64)
    if bn is not None:
        scale, offset = _bn_scale_offset(bn)
        kernel = kernel * scale
        bias = bias * scale + offset
    if depthwise:
        kernel = kernel.reshape(kernel.shape[0], kernel.shape[1], cout, 1)
    return _FoldedConv(kernel * extra_scale, bias * extra_scale, strides, depthwise, activation)


class _CausalConvPlan:
    """Inference plan of one `CausalConv3D` for one frame.

    Call: (x [1, H, W, Cin], states) -> (y [1, H', W', Cout], new_states).
    """

    def __init__(self, conv, extra_scale=1.0):
        kt = conv.kernel_size[0]
        self.kt = kt
        self.buffer_name = conv.buffer_name
        self.factorized = conv.factorized
        self.depthwise = conv.depthwise
        self.activation = get_activation(conv.activation)
        strides = conv.strides[1:]
        kernel = conv.kernel.numpy()
        bias = conv.bias.numpy() if conv.bias is not None else None
        if kt > 1 and not conv.causal:
            raise ValueError(f"Layer {conv.name!r} is not causal; only stream models export "
                             "to a single-frame graph.")
        if self.factorized:
            # Spatial conv (+BN +act), then the temporal conv (+bias +BN +act).
            self.spatial = _fold(kernel[0], conv.depthwise, conv.bn, None, strides,
                                 conv.activation)
            temporal = np.asarray(conv.temporal_kernel.numpy(), np.float64)  # [kt,1,1,in,out]
            self.taps = self._temporal_taps(temporal, conv.bn_temporal, bias, extra_scale)
        elif kt > 1:
            self.spatial = None
            # One folded conv per tap; the BN offset is added once, by the last tap.
            self.tap_convs = []
            for tap in range(kt):
                last = tap == kt - 1
                folded = _fold(kernel[tap], conv.depthwise, conv.bn, bias if last else None,
                               strides, None, extra_scale)
                if conv.bn is not None and not last:
                    folded.bias = np.zeros_like(folded.bias)
                self.tap_convs.append(folded)
        else:
            self.spatial = _fold(kernel[0], conv.depthwise, conv.bn, bias, strides,
                                 conv.activation, extra_scale)

    def _temporal_taps(self, temporal, bn, conv_bias, extra_scale):
        cout = temporal.shape[-1]
        bias = np.zeros(cout) if conv_bias is None else np.asarray(conv_bias, np.float64)
        scale = np.ones(cout)
        if bn is not None:
            bn_scale, bn_offset = _bn_scale_offset(bn)
            scale = bn_scale
            bias = bias * bn_scale + bn_offset
        kernel = temporal[:, 0, 0] * scale  # [kt, in, out]
        self.temporal_bias = np.asarray(bias * extra_scale, np.float32)
        if self.depthwise:
            # [kt, 1, C] -> a depthwise filter [kt, 1, C, 1] over [1, kt, H*W, C].
            return np.asarray(kernel * extra_scale, np.float32).reshape(
                self.kt, 1, cout, 1)
        return np.asarray(kernel * extra_scale, np.float32)[:, None, None]  # [kt,1,1,in,out]

    def __call__(self, x, states):
        if self.kt == 1:
            return self.spatial(x), {}
        if self.factorized:
            x = self.spatial(x)
        buffer = states[self.buffer_name]
        if buffer.shape.rank == 5:
            # Published layout [1, kt - 1, H, W, C]: concatenate in 5-D, so the state
            # needs no reshape (a copy) at the model's boundary.
            full = tf.concat([buffer, tf.expand_dims(x, 1)], axis=1)  # [1, kt, H, W, C]
            new_states = {self.buffer_name: full[:, 1:]}
            full = tf.reshape(full, [self.kt] + x.shape.as_list()[1:])
        else:
            full = tf.concat([buffer, x], axis=0)  # [kt, H, W, C], oldest frame first
            new_states = {self.buffer_name: full[1:]}
        if self.factorized:
            if self.depthwise:
                shape = tf.shape(x)
                flat = tf.reshape(full, [1, self.kt, -1, x.shape[-1]])
                y = tf.nn.depthwise_conv2d(flat, self.taps, [1, 1, 1, 1], "VALID")
                y = tf.reshape(y, shape)
            else:
                y = None
                for tap in range(self.kt):
                    term = tf.nn.conv2d(full[tap:tap + 1], self.taps[tap], [1, 1, 1, 1], "SAME")
                    y = term if y is None else y + term
            y = tf.nn.bias_add(y, self.temporal_bias)
        else:
            y = None
            for tap, conv in enumerate(self.tap_convs):
                term = conv.linear(full[tap:tap + 1])
                y = term if y is None else y + term
        return self.activation(y), new_states


def _running_mean(mean, count, frame_mean):
    """One step of a cumulative mean: mean + (x - mean) / (n + 1), and n + 1.

    Written under the `FLOAT_SCOPE` name scope, which an int8 export keeps in
    float32: a quantized 1 / (n + 1), or a mean requantized every frame, drifts.

    Args:
        mean: [1, 1, 1, C] or (published layout) [1, 1, 1, 1, C].
        count: (1,) int32.
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


def _same_window_counts(height, width, stride, size=3):
    """[1, H', W', 1] numpy: how many in-image pixels each SAME `size` x `size` window holds."""
    def per_axis(n):
        out = -(-n // stride)
        pad = max((out - 1) * stride + size - n, 0) // 2
        starts = np.arange(out) * stride - pad
        return np.minimum(starts + size, n) - np.maximum(starts, 0)
    return np.outer(per_axis(height), per_axis(width)).astype(np.float32)[None, :, :, None]


def _average_pool_3x3(x, strides):
    """tf.nn.avg_pool2d(x, 3, strides, "SAME") (padding not counted) as XNNPACK runs it in int8.

    A depthwise conv with an all-ones kernel sums each window; a multiplication by
    the constant reciprocal of each window's pixel count makes it the mean. XNNPACK
    has no int8 AVERAGE_POOL_2D (it would cut the int8 graph), and a float one kept in
    float by the quantizer's denylist still comes out int8 (the converter gives a pool
    its input's scale).
    """
    if strides[0] != strides[1]:
        raise ValueError(f"Skip pooling needs equal strides; got {strides}.")
    _, height, width, channels = x.shape.as_list()
    summed = tf.nn.depthwise_conv2d(x, np.ones((3, 3, channels, 1), np.float32),
                                    (1, strides[0], strides[1], 1), "SAME")
    return summed * (1.0 / _same_window_counts(height, width, strides[0]))


class _SqueezeExcitationPlan:
    """Inference plan of one causal `SqueezeExcitation` for one frame."""

    def __init__(self, se):
        self.se_type = se.se_type
        self.pool = se.pool
        if self.pool is not None and not self.pool.stateful:
            raise ValueError(f"SE layer {se.name!r} is not causal; only stream models export.")
        self.reduce = _fold(se.se_reduce.kernel.numpy()[0], False, None,
                            se.se_reduce.bias.numpy(), (1, 1), se.se_reduce.activation)
        self.expand = _fold(se.se_expand.kernel.numpy()[0], False, None,
                            se.se_expand.bias.numpy(), (1, 1), se.se_expand.activation)
        self.pos_encoding = None
        if se.pos_encoding is not None:
            pe = se.pos_encoding
            sin_angles, cos_angles = sinusoid_angles(pe.channels, pe.max_timescale)
            self.pos_angles = np.concatenate([sin_angles, cos_angles]).astype(np.float32)
            self.pos_is_cos = np.concatenate(
                [np.zeros(len(sin_angles)), np.ones(len(cos_angles))]).astype(bool)
            self.pos_scale = float(pe.scale.numpy())
            self.pos_count_name = pe.count_name
            self.pos_encoding = pe

    def __call__(self, x, states):
        new_states = {}
        frame_mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)  # [1, 1, 1, C]
        if self.se_type == "2d":
            pooled = frame_mean
        else:
            mean, stored, count = _running_mean(states[self.pool.buffer_name],
                                                states[self.pool.count_name], frame_mean)
            new_states[self.pool.buffer_name] = stored
            new_states[self.pool.count_name] = count
            pooled = mean
            if self.se_type == "2plus3d":
                pooled = tf.concat([mean, frame_mean], axis=-1)
        if self.pos_encoding is not None:
            count = states[self.pos_count_name]
            with tf.name_scope(FLOAT_SCOPE):
                position = tf.cast(count, tf.float32)  # [1]
                half = int(np.sum(~self.pos_is_cos))
                phases = position * self.pos_angles  # [C]
                encoding = tf.concat([tf.sin(phases[:half]), tf.cos(phases[half:])], axis=0)
                pooled = pooled + tf.reshape(encoding * self.pos_scale, [1, 1, 1, -1])
            new_states[self.pos_count_name] = count + 1
        gate = self.expand(self.reduce(pooled))
        return x * gate, new_states


class _BlockPlan:
    """Inference plan of one `MovinetBlock` for one frame."""

    def __init__(self, block):
        self.expansion = _CausalConvPlan(block.expansion)
        self.feature = _CausalConvPlan(block.feature)
        self.se = _SqueezeExcitationPlan(block.se) if block.se is not None else None
        # The ReZero scale multiplies the projection's output: fold it in.
        self.projection = _CausalConvPlan(block.projection,
                                          extra_scale=float(block.rezero.scale.numpy()))
        self.skip_pool = None
        self.skip_projection = None
        if block.skip is not None:
            if block.skip.strides[1:] != (1, 1):
                self.skip_pool = block.skip.strides[1:]
            self.skip_projection = _CausalConvPlan(block.skip.projection)

    def __call__(self, inputs, states):
        new_states = {}
        x, _ = self.expansion(inputs, states)
        x, feature_states = self.feature(x, states)
        new_states.update(feature_states)
        if self.se is not None:
            x, se_states = self.se(x, states)
            new_states.update(se_states)
        x, _ = self.projection(x, states)
        shortcut = inputs
        if self.skip_pool is not None:
            shortcut = _average_pool_3x3(shortcut, self.skip_pool)
        if self.skip_projection is not None:
            shortcut, _ = self.skip_projection(shortcut, states)
        return x + shortcut, new_states


class FrameGraph:
    """A stream MoViNet as a function of one frame and the states, for export.

    Args:
        model: a stream `MovinetClassifier` (causal), float32.
        image_size: (H, W) or an int: the frame size the graph is built for.

    Call arguments:
        image: float32 [1, H, W, 3] in [0, 1].
        states: dict name -> tensor, each in the ``"gpu"`` or the ``"published"``
            layout (see `state_shapes`; told apart by rank).

    Returns:
        (logits [1, num_classes], new_states, each in the layout it came in).

    The weights are read once, at construction: a later change to the Keras
    model does not reach an existing FrameGraph.
    """

    def __init__(self, model, image_size):
        if not getattr(model, "is_stream", False):
            raise ValueError("FrameGraph needs a stream model (build_model(..., stream=True)); "
                             f"got {getattr(model, 'name', type(model).__name__)!r}.")
        if model.compute_dtype != "float32":
            raise ValueError(f"Export needs a float32 model; {model.name!r} computes in "
                             f"{model.compute_dtype}. Rebuild it without mixed precision and "
                             "load its weights.")
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        self.image_size = tuple(int(s) for s in image_size)
        self.num_classes = model.num_classes
        self.video_shape = [1, 1, self.image_size[0], self.image_size[1], 3]
        self._published_specs = model.state_specs(self.video_shape)
        backbone = model.backbone
        self.stem = _CausalConvPlan(backbone.stem)
        self.blocks = [_BlockPlan(block) for block in backbone.blocks]
        self.head_project = _CausalConvPlan(backbone.head_project)
        self.head_buffer_name = backbone.head_pool.buffer_name
        self.head_count_name = backbone.head_pool.count_name
        head = model.classifier_head
        self.hidden = _CausalConvPlan(head.hidden)
        self.classifier = _CausalConvPlan(head.classifier)

    @property
    def state_names(self):
        """The state names, in the order the layers use them."""
        return list(self._published_specs)

    def state_shapes(self, layout="published"):
        """dict name -> (shape tuple, tf.DType) for batch 1 at `image_size`.

        ``"published"`` is the Keras model's layout ([1, kt - 1, H, W, C] buffers,
        [1, 1, 1, 1, C] pools, (1,) counts); ``"gpu"`` drops the leading batch
        axis of every 5-D state, so no tensor is more than 4-D.
        """
        if layout not in LAYOUTS:
            raise ValueError(f"Unknown state layout {layout!r}; expected one of {LAYOUTS}.")
        shapes = {}
        for name, spec in self._published_specs.items():
            shape = tuple(int(d) for d in spec.shape)
            if layout == "gpu" and len(shape) == 5:
                shape = shape[1:]
            shapes[name] = (shape, spec.dtype)
        return shapes

    def image_shape(self, layout="published"):
        """[1, 1, H, W, 3] (published) or [1, H, W, 3] (gpu)."""
        if layout not in LAYOUTS:
            raise ValueError(f"Unknown layout {layout!r}; expected one of {LAYOUTS}.")
        height, width = self.image_size
        return (1, 1, height, width, 3) if layout == "published" else (1, height, width, 3)

    def init_states(self, layout="gpu"):
        """Zero states (numpy) in `layout`."""
        return {name: np.zeros(shape, dtype.as_numpy_dtype)
                for name, (shape, dtype) in self.state_shapes(layout).items()}

    def __call__(self, image, states):
        new_states = {}
        x, _ = self.stem(image, states)
        for block in self.blocks:
            x, block_states = block(x, states)
            new_states.update(block_states)
        x, _ = self.head_project(x, states)
        frame_mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        mean, stored, count = _running_mean(states[self.head_buffer_name],
                                            states[self.head_count_name], frame_mean)
        new_states[self.head_buffer_name] = stored
        new_states[self.head_count_name] = count
        hidden, _ = self.hidden(mean, states)
        logits, _ = self.classifier(hidden, states)
        return tf.reshape(logits, [1, self.num_classes]), new_states

    def signature_function(self, layout="published"):
        """A tf.function with one named TensorSpec per input, for conversion.

        Inputs ``image`` plus every state, in `layout`; outputs a dict
        ``{"logits": ..., **states}`` in the same layout.
        """
        if layout not in LAYOUTS:
            raise ValueError(f"Unknown layout {layout!r}; expected one of {LAYOUTS}.")
        published = self.state_shapes("published")
        names = self.state_names
        image_shape = self.image_shape(layout)
        specs = [tf.TensorSpec(image_shape, tf.float32, name="image")]
        specs += [tf.TensorSpec(self.state_shapes(layout)[name][0], published[name][1], name=name)
                  for name in names]

        def serve(image, *state_values):
            # The layers take states in either layout (they tell them apart by rank).
            frame = tf.reshape(image, self.image_shape("gpu")) if layout == "published" else image
            logits, new_states = self(frame, dict(zip(names, state_values)))
            return {"logits": logits, **{name: new_states[name] for name in names}}

        return tf.function(serve, input_signature=specs, autograph=False)
