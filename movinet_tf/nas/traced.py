"""The supernet as one traced graph: every architecture of a space through one `tf.function`.

`Supernet.forward` slices the shared weights to one architecture's shapes, so
every architecture is a different graph and the forward pass runs eagerly, op
by op. `TracedSupernet` runs the largest network of the space instead, with the
architecture given as one int32 vector (`encode`), so a single trace serves
every architecture:

* widths: channels past the architecture's width are zeroed after every
  convolution, BatchNorm and activation (the classifier's hidden layer
  included), so each layer sees exactly the first ``c`` channels the sliced
  weights would see;
* kernels: the largest kernel, with the taps of the architecture's kernel (the
  centre crop `Supernet` uses) moved to where, under the largest kernel's
  padding, they meet the same input pixels and frames as the small kernel under
  its own: TF 'SAME' in space (a 1-wide kernel of a stride-2 layer on an even
  input sits one tap left of the centre), causal or centred in time (a causal
  k-tap kernel sits at the end of the largest one); the other taps are zero;
* depth: layer slots past a block's depth are skipped (`tf.cond`, identity);
* structure: the temporal half of a factorized convolution and the skip
  projection run only where the standalone model has them (`tf.cond`); which
  weights it has is asked of `Supernet.weight_shapes`, i.e. of the model's own
  layers.

The logits equal `Supernet.forward`'s (up to float summation order; tested
atol 1e-5), gradients are exactly zero outside the architecture's slices, and
BatchNorm moving statistics change only for the active channels of active
layers. The price: every step computes the largest network of the space.

Traces: one for training (`train_step`), one per BatchNorm mode for scoring
(`logits`) and one for `recalibrate`, for any batch size (a new clip shape
traces again).
"""
import numpy as np
import tensorflow as tf

from movinet_tf.layers import ops
from movinet_tf.layers.ops import dims
from movinet_tf.nas.space import UNSTRIDED_BLOCKS

# Per layer slot, in this order, in the architecture vector.
_SLOT_FIELDS = ("active", "expand", "out", "kt", "kh", "kw", "se_hidden", "temporal", "skip")


def _same_left_pad(size, stride, kernel):
    """The left padding of TF 'SAME' for one spatial dimension."""
    out = -(-size // stride)
    return max((out - 1) * stride + kernel - size, 0) // 2


def _tap_table(largest, sizes, front_pad):
    """[largest + 1, largest, largest] float32: row k places a centre-cropped k-tap kernel.

    Row k is a matrix S with ``S[j, i] = 1`` when tap i of the largest kernel,
    kept by the centre crop to k taps, must act at position j of a kernel of
    `largest` taps, so that it meets the same input under the largest kernel's
    padding ``front_pad(largest)`` as under the small kernel's ``front_pad(k)``.
    """
    table = np.zeros([largest + 1, largest, largest], np.float32)
    for k in sizes:
        start = (largest - k) // 2
        offset = front_pad(largest) - front_pad(k)
        for m in range(k):
            if not 0 <= m + offset < largest:
                raise ValueError(f"A {k}-tap kernel cannot be placed in the largest kernel of "
                                 f"{largest} taps at this input size.")
            table[k, m + offset, start + m] = 1.0
    return tf.constant(table)


def _mask(width, size):
    """[size] float32: 1 for the first `width` channels, 0 after."""
    return tf.cast(tf.range(size) < width, tf.float32)


class TracedSupernet:
    """A `Supernet` run as traced graphs, the architecture a tensor.

    Args:
        supernet: the `Supernet` (its weights are used and trained in place).
        optimizer: a built Keras optimizer for `train_step` (None: no training).
        loss_fn: (one-hot labels, logits) -> scalar loss, for `train_step`.
        clip_norm: every gradient tensor is clipped to this norm in `train_step`.
    """

    def __init__(self, supernet, optimizer=None, loss_fn=None, clip_norm=5.0):
        self.supernet = supernet
        self.space = supernet.space
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.clip_norm = float(clip_norm)
        self._slots = [(b, l) for b in range(self.space.num_blocks)
                       for l in range(self.space.max_layers[b])]
        names = ["stem", "head", "classifier"] + [
            f"block{b}_layer{l}/{field}" for b, l in self._slots for field in _SLOT_FIELDS]
        self._position = {name: i for i, name in enumerate(names)}
        self._encoded = {}
        self._sizes = [sorted({k[d] for k in self.space.kernels}) for d in range(3)]
        self._functions = {}  # (entry point, clip shape) -> tf.function

    # ------------------------------------------------------------ the architecture

    def encode(self, spec):
        """The architecture vector (int32) of a `ModelSpec` or spec string of the space."""
        cached = self._encoded.get(spec)  # spec strings and (frozen) ModelSpecs hash
        if cached is not None:
            return cached
        shapes = self.supernet.weight_shapes(spec)
        values = np.zeros(len(self._position), np.int32)

        def put(name, value):
            values[self._position[name]] = int(value)

        put("stem", shapes["stem/kernel"].shape[-1])
        put("head", shapes["head_project/kernel"].shape[-1])
        put("classifier", shapes["classifier_head/hidden/kernel"].shape[-1])
        for b, l in self._slots:
            prefix = f"block{b}_layer{l}"
            field = lambda name: f"{prefix}/{name}"  # noqa: E731
            for name in ("kt", "kh", "kw"):
                put(field(name), 1)  # a valid row of the tap tables when the slot is unused
            if f"{prefix}/expansion/kernel" not in shapes:
                continue
            feature = shapes[f"{prefix}/feature/kernel"].shape
            temporal = shapes.get(f"{prefix}/feature/temporal_kernel")
            kernel = (temporal.shape[0] if temporal is not None else feature[0],
                      feature[1], feature[2])
            put(field("active"), 1)
            put(field("expand"), shapes[f"{prefix}/expansion/kernel"].shape[-1])
            put(field("out"), shapes[f"{prefix}/projection/kernel"].shape[-1])
            for name, size in zip(("kt", "kh", "kw"), kernel):
                put(field(name), size)
            if f"{prefix}/se/se_reduce/kernel" in shapes:
                put(field("se_hidden"), shapes[f"{prefix}/se/se_reduce/kernel"].shape[-1])
            put(field("temporal"), temporal is not None)
            put(field("skip"), f"{prefix}/skip/projection/kernel" in shapes)
        encoded = tf.constant(values)
        if len(self._encoded) > 4096:
            self._encoded.clear()
        self._encoded[spec] = encoded
        return encoded

    # ------------------------------------------------------------ public entry points

    def _function(self, name, video, *extra_specs):
        """The tf.function of entry point `name` for clips shaped like `video`, any batch size."""
        key = (name, tuple(video.shape[1:]))
        function = self._functions.get(key)
        if function is None:
            graphs = {"logits_batch": lambda v, a: self._logits_graph(v, a, True),
                      "logits_moving": lambda v, a: self._logits_graph(v, a, False),
                      "recalibrate": self._recalibrate_graph, "train_step": self._train_graph}
            signature = [tf.TensorSpec([None, *video.shape[1:]], tf.float32), *extra_specs,
                         tf.TensorSpec([len(self._position)], tf.int32)]
            function = tf.function(graphs[name], input_signature=signature)
            self._functions[key] = function
        return function

    def logits(self, video, spec, batch_stats=True):
        """Logits [B, num_classes] of `spec`, no dropout.

        batch_stats: normalise with each batch's statistics (True) or the
        moving statistics (False, e.g. after `recalibrate`).
        """
        video = tf.convert_to_tensor(video, tf.float32)
        name = "logits_batch" if batch_stats else "logits_moving"
        return self._function(name, video)(video, self.encode(spec))

    def recalibrate(self, spec, video):
        """Sets `spec`'s moving BatchNorm statistics to those of `video` (`Supernet.recalibrate`)."""
        video = tf.convert_to_tensor(video, tf.float32)
        self._function("recalibrate", video)(video, self.encode(spec))

    def train_step(self, video, labels, spec):
        """One shared-weight step on `spec`: returns (loss, logits) as tensors."""
        if self.optimizer is None or self.loss_fn is None:
            raise ValueError("TracedSupernet.train_step needs an optimizer and a loss_fn.")
        video = tf.convert_to_tensor(video, tf.float32)
        labels = tf.cast(labels, tf.int32)
        function = self._function("train_step", video, tf.TensorSpec([None], tf.int32))
        return function(video, labels, self.encode(spec))

    def tracing_counts(self):
        """dict entry point -> how many graphs it has traced so far (all clip shapes)."""
        counts = {"logits": 0, "recalibrate": 0, "train_step": 0}
        for (name, _), function in self._functions.items():
            counts[name.split("_")[0] if name.startswith("logits") else name] += \
                function.experimental_get_tracing_count()
        return counts

    # ------------------------------------------------------------ graphs

    def _logits_graph(self, video, arch, batch_stats):
        return self._forward(video, arch, training=False, batch_stats=batch_stats,
                             update_stats=False, momentum=self.supernet.momentum)

    def _recalibrate_graph(self, video, arch):
        self._forward(video, arch, training=False, batch_stats=True, update_stats=True,
                      momentum=0.0)

    def _train_graph(self, video, labels, arch):
        variables = self.supernet.trainable_weights
        with tf.GradientTape() as tape:
            logits = self._forward(video, arch, training=True, batch_stats=True,
                                   update_stats=True, momentum=self.supernet.momentum)
            loss = self.loss_fn(tf.one_hot(labels, self.supernet.num_classes), logits)
        grads = tape.gradient(loss, variables)
        grads = [tf.clip_by_norm(tf.zeros_like(v) if g is None else tf.convert_to_tensor(g),
                                 self.clip_norm) for g, v in zip(grads, variables)]
        self.optimizer.apply(grads, variables)
        return loss, logits

    def _forward(self, video, arch, training, batch_stats, update_stats, momentum):
        net, w = self.supernet, self.supernet.w

        def get(name):
            return arch[self._position[name]]

        def norm(x, name, width):
            """BatchNorm of the first `width` channels; the others are zero."""
            size = x.shape[-1]
            mask = _mask(width, size)
            if batch_stats:
                mean, variance = tf.nn.moments(x, axes=[0, 1, 2, 3])
                if update_stats:
                    keep = mask > 0
                    for part, value in (("moving_mean", mean), ("moving_variance", variance)):
                        var = w[f"{name}/{part}"]
                        new = var * momentum + tf.stop_gradient(value) * (1 - momentum)
                        var.assign(tf.where(keep, new, var))
            else:
                mean, variance = w[f"{name}/moving_mean"], w[f"{name}/moving_variance"]
            out = tf.nn.batch_normalization(x, mean, variance, w[f"{name}/beta"],
                                            w[f"{name}/gamma"], net.epsilon)
            return out * mask

        def act(x, width, fn=net.act):
            return fn(x) * _mask(width, x.shape[-1])

        x = video
        stem = get("stem")
        x = act(norm(net._conv(x, w["stem/kernel"], (2, 2)), "stem/bn", stem), stem)
        for b, l in self._slots:
            prefix = f"block{b}_layer{l}"
            stride = 2 if l == 0 and b not in UNSTRIDED_BLOCKS else 1
            layer = lambda x=x, l=l, prefix=prefix, stride=stride: \
                self._layer(x, get, prefix, l, stride, norm, act)  # noqa: E731
            if l == 0:
                x = layer()
            else:  # a slot past the block's depth is the identity
                x = tf.cond(get(f"{prefix}/active") > 0, layer, lambda x=x: x)
        head = get("head")
        x = act(norm(net._conv(x, w["head_project/kernel"]), "head_project/bn", head), head)
        hidden = w["classifier_head/hidden/kernel"].shape[-1]
        return net.classify(x, w, training, _mask(get("classifier"), hidden))

    def _placed(self, kernel, arch_sizes, size_in, stride):
        """`kernel` [Kt, Kh, Kw, ...] with only the architecture's taps, placed (see module doc)."""
        net = self.supernet
        largest = kernel.shape[:3]
        time_front = ((lambda k: k - 1) if net.causal else (lambda k: (k - 1) // 2))
        fronts = [time_front] + [lambda k, n=n: _same_left_pad(n, stride, k) for n in size_in]
        matrices = []
        for d in range(3):
            if largest[d] == 1:
                matrices.append(tf.ones([1, 1]))
                continue
            table = _tap_table(largest[d], self._sizes[d], fronts[d])
            matrices.append(tf.gather(table, arch_sizes[d]))
        return tf.einsum("ai,bj,ck,ijkde->abcde", *matrices, kernel)

    def _layer(self, x, get, prefix, l, stride, norm, act):
        net, w = self.supernet, self.supernet.w
        field = lambda name: get(f"{prefix}/{name}")  # noqa: E731
        expand, out = field("expand"), field("out")
        sizes = (field("kt"), field("kh"), field("kw"))
        h = act(norm(net._conv(x, w[f"{prefix}/expansion/kernel"]), f"{prefix}/expansion/bn",
                     expand), expand)
        spatial_in = dims(h)[2:4]
        factorized = f"{prefix}/feature/temporal_kernel" in w
        feature = w[f"{prefix}/feature/kernel"]
        spatial_sizes = (1,) + sizes[1:] if factorized else sizes
        feature = self._placed(feature, spatial_sizes, spatial_in, stride)
        h = act(norm(net._conv(h, feature, (stride, stride), depthwise=True),
                     f"{prefix}/feature/bn", expand), expand)
        if factorized:
            temporal = self._placed(w[f"{prefix}/feature/temporal_kernel"], (sizes[0], 1, 1),
                                    (1, 1), 1)

            def time_conv(h=h):
                t = net._conv(h, temporal, depthwise=True)
                return act(norm(t, f"{prefix}/feature/bn_temporal", expand), expand)

            h = tf.cond(field("temporal") > 0, time_conv, lambda h=h: h)
        if net.se_type != "none":
            h = self._squeeze_excite(h, prefix, field("se_hidden"), act)
        h = norm(net._conv(h, w[f"{prefix}/projection/kernel"]), f"{prefix}/projection/bn", out)
        h = h * w[f"{prefix}/rezero/scale"]
        if l != 0:
            return h + x

        def projected(x=x):
            shortcut = ops.average_pool_3x3(x, (stride, stride)) if stride != 1 else x
            return norm(net._conv(shortcut, w[f"{prefix}/skip/projection/kernel"]),
                        f"{prefix}/skip/projection/bn", out)

        if stride != 1:
            return h + projected()
        def identity(x=x):
            # An unstrided first layer of equal widths: the input, zero-padded to the
            # largest output width (the padding is past the architecture's width).
            extra = h.shape[-1] - x.shape[-1]
            return tf.pad(x, [[0, 0]] * 4 + [[0, extra]]) if extra > 0 else x[..., :h.shape[-1]]

        return h + tf.cond(field("skip") > 0, projected, identity)

    def _squeeze_excite(self, x, prefix, hidden_width, act):
        net, w = self.supernet, self.supernet.w
        frame_means = tf.reduce_mean(x, axis=[2, 3], keepdims=True)
        if net.se_type == "2d":
            pooled = frame_means
        else:
            pooled = ops.cumulative_mean(frame_means, net.causal)
            if net.se_type == "2plus3d":
                if not net.causal:
                    pooled = tf.broadcast_to(pooled, tf.shape(frame_means))
                pooled = tf.concat([pooled, frame_means], axis=-1)
        hidden = act(net._conv(pooled, w[f"{prefix}/se/se_reduce/kernel"])
                     + w[f"{prefix}/se/se_reduce/bias"], hidden_width)
        gate = net.gate_act(net._conv(hidden, w[f"{prefix}/se/se_expand/kernel"])
                            + w[f"{prefix}/se/se_expand/bias"])
        return gate * x
