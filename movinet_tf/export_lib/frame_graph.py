"""A single-frame, inference-only form of a stream MoViNet, for TFLite.

The Keras model computes every layer on 5-D ``[B, T, H, W, C]`` tensors so that
it can train on clips and stream any number of frames. A phone runs it one
frame at a time in inference mode, where most of that generality is overhead:
reshapes around each 2D conv, BatchNorm as separate multiply/add ops on 5-D
tensors, cumulative sums and ranges over a time axis of length 1.

`FrameGraph` assembles the layers' own single-frame steps (``frame_step()``
of `CausalConv3D`, `SqueezeExcitation`, `MovinetBlock`, the pools and the
classifier head, in `movinet_tf.layers`), which compute the same function for
exactly one frame of batch 1, with:

* BatchNorm folded into the preceding conv's kernel and bias, and the ReZero
  scale folded into the projection conv (so each conv is one TFLite op with a
  fused bias);
* every tensor at most 4-D: a frame is ``[1, H, W, C]``, a stream buffer is
  ``[kt - 1, H, W, C]`` (the buffered frames take the batch axis), a pool
  buffer ``[1, 1, 1, C]``;
* the cumulative means as ``mean + (x - mean) / (n + 1)`` with the frame count n
  (`ops.running_mean_step`): no cumsum or range. These few ops on [1, 1, 1, C]
  tensors, and the positional encoding, are named under `FLOAT_SCOPE`, which an
  int8 export keeps in float32;
* the skip average pools as a depthwise sum times reciprocal window counts
  (`ops.window_mean_3x3`: XNNPACK runs that in int8).

The states keep the published names. `state_shapes` gives their shapes in two
layouts: ``"published"`` (the Keras model's, e.g. ``[1, kt - 1, H, W, C]``) and
``"frame"`` (the internal 4-D ones: every 5-D state without its batch axis).
The TFLite signature converts at the boundary (see `tflite_export.py`).

Equality with the Keras model's stream call is tested in
``tests/export_lib/test_frame_graph.py``.
"""
import numpy as np
import tensorflow as tf

from movinet_tf.layers import ops

LAYOUTS = ("published", "frame")

# Name scope of the ops that an int8 export keeps in float32 (see `tflite_export`).
FLOAT_SCOPE = ops.FLOAT_SCOPE
# The name scope of the stem's ops in the converted graph (blocks run under their layer names).
STEM_SCOPE = "stem"


def check_layout(layout):
    """The layout name, checked: 'published' or 'frame'."""
    if layout not in LAYOUTS:
        raise ValueError(f"Unknown state layout {layout!r}; expected one of {LAYOUTS}.")
    return layout


class FrameGraph:
    """A stream MoViNet as a function of one frame and the states, for export.

    Args:
        model: a stream `MovinetClassifier` (causal), float32.
        image_size: (H, W) or an int: the frame size the graph is built for.

    Call arguments:
        image: float32 [1, H, W, 3] in [0, 1].
        states: dict name -> tensor, each in the ``"frame"`` or the ``"published"``
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
        self.stem = backbone.stem.frame_step()
        self.blocks = [block.frame_step() for block in backbone.blocks]
        # Each block's ops run under its layer's name scope, so that an int8 export can
        # keep chosen layers in float (`quantize.FLOAT_LAYERS`).
        self.block_names = [block.name for block in backbone.blocks]
        self.head_project = backbone.head_project.frame_step()
        self.head_pool = backbone.head_pool.frame_step()
        self.classifier_head = model.classifier_head.frame_step()

    @property
    def state_names(self):
        """The state names, in the order the layers use them."""
        return list(self._published_specs)

    def state_shapes(self, layout="published"):
        """dict name -> (shape tuple, tf.DType) for batch 1 at `image_size`.

        ``"published"`` is the Keras model's layout ([1, kt - 1, H, W, C] buffers,
        [1, 1, 1, 1, C] pools, (1,) counts); ``"frame"`` drops the leading batch
        axis of every 5-D state, so no tensor is more than 4-D.
        """
        layout = check_layout(layout)
        shapes = {}
        for name, spec in self._published_specs.items():
            shape = tuple(int(d) for d in spec.shape)
            if layout == "frame" and len(shape) == 5:
                shape = shape[1:]
            shapes[name] = (shape, spec.dtype)
        return shapes

    def image_shape(self, layout="published"):
        """[1, 1, H, W, 3] (published) or [1, H, W, 3] (frame)."""
        layout = check_layout(layout)
        height, width = self.image_size
        return (1, 1, height, width, 3) if layout == "published" else (1, height, width, 3)

    def init_states(self, layout="frame"):
        """Zero states (numpy) in `layout`."""
        return {name: np.zeros(shape, dtype.as_numpy_dtype)
                for name, (shape, dtype) in self.state_shapes(layout).items()}

    def __call__(self, image, states):
        new_states = {}
        with tf.name_scope(STEM_SCOPE):
            x, _ = self.stem(image)
        for name, block in zip(self.block_names, self.blocks):
            with tf.name_scope(name):
                x, block_states = block(x, states)
            new_states.update(block_states)
        x, _ = self.head_project(x)
        frame_mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        mean, pool_states = self.head_pool(frame_mean, states)
        new_states.update(pool_states)
        return self.classifier_head(mean), new_states

    def signature_function(self, layout="published"):
        """A tf.function with one named TensorSpec per input, for conversion.

        Inputs ``image`` plus every state, in `layout`; outputs a dict
        ``{"logits": ..., **states}`` in the same layout.
        """
        layout = check_layout(layout)
        published = self.state_shapes("published")
        names = self.state_names
        image_shape = self.image_shape(layout)
        specs = [tf.TensorSpec(image_shape, tf.float32, name="image")]
        specs += [tf.TensorSpec(self.state_shapes(layout)[name][0], published[name][1], name=name)
                  for name in names]

        def serve(image, *state_values):
            # The layers take states in either layout (they tell them apart by rank).
            with tf.name_scope(STEM_SCOPE):   # The stem's own ops, for the quantizer.
                frame = (tf.reshape(image, self.image_shape("frame")) if layout == "published"
                         else image)
            logits, new_states = self(frame, dict(zip(names, state_values)))
            return {"logits": logits, **{name: new_states[name] for name in names}}

        return tf.function(serve, input_signature=specs, autograph=False)
