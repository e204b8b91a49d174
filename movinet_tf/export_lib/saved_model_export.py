"""Export of a MoViNet as a TensorFlow SavedModel for serving.

The SavedModel loads with plain ``tf.saved_model.load(path)`` in a process that
never imports movinet_tf. Signatures:

* ``serving_default``: ``image`` float32 [B, T, H, W, 3] in [0, 1] -> ``logits``
  [B, N], ``probabilities`` [B, N], ``top_k_labels`` string [B, k] and
  ``top_k_probs`` [B, k] (class names embedded in the SavedModel).
* ``serving_uint8``: the same for a uint8 clip [B, T, H, W, 3] in [0, 255]
  (divided by 255 inside).
* Stream models only:

  * ``init_states``: ``input_shape`` int32 [5] ([B, T, H, W, 3]) -> the zero
    states by their published names.
  * ``call``: ``image`` float32 [B, t, H, W, 3] plus every state -> ``logits``
    plus the new states.

B, T and H, W are dynamic unless the model was built for fixed ones. The
restored object also has a ``classify`` function taking either dtype
(``loaded.classify(clip)``), the class names (``loaded.labels``), the eval
preprocessing sizes (``loaded.image_size``, ``loaded.min_image_size``) and the
input contract: ``loaded.frame_rate`` (frames per second the model was trained
at, 0.0 when unknown) and ``loaded.input_contract`` (the manifest's JSON, see
`movinet_tf.data.contract`).

The signatures check their inputs and fail with a message naming the input:
a clip of T=0 frames, an ``input_shape`` that is not 5 positive numbers, a
negative frame count state.
"""
import os

import tensorflow as tf
from absl import logging

from movinet_tf import atomic_io
from movinet_tf.data.contract import InputContract

DEFAULT_TOP_K = 5


def stream_frames(model, video, states):
    """Feeds `video` [B, T, H, W, 3] through a stream model one frame at a time.

    The stream call is traced for exactly one frame, inside a tf.while_loop over
    the (dynamic) T. Streaming frame by frame gives the whole-clip logits (the
    core's contract, tested to 1e-5), keeps memory flat in T, and avoids tracing
    the clip path with a dynamic T: the core's temporal conv branches on T in
    Python, which fails for a symbolic T.

    Returns:
        (logits [B, N] after the last frame, new states).
    """
    names = list(states)
    num_frames = tf.shape(video)[1]
    checks = [tf.debugging.assert_positive(
        num_frames, message="image: the clip has T=0 frames; expected [B, T >= 1, H, W, 3]")]
    checks += [tf.debugging.assert_non_negative(
        states[name], message=f"state {name} is negative; a frame count is >= 0 (pass the "
                              "states that init_states or the previous call returned)")
               for name in names if name.endswith("frame_count")]
    with tf.control_dependencies(checks):
        num_frames = tf.identity(num_frames)

    def body(t, logits, *values):
        frame = video[:, t:t + 1]
        frame = tf.ensure_shape(frame, [None, 1] + video.shape.as_list()[2:])
        logits, new_states = model({**dict(zip(names, values)), "image": frame}, training=False)
        return (t + 1, logits) + tuple(new_states[name] for name in names)

    batch = tf.shape(video)[0]
    initial_logits = tf.zeros([batch, model.num_classes], tf.float32)
    loop_vars = (tf.constant(0), initial_logits) + tuple(states[name] for name in names)
    results = tf.while_loop(lambda t, *_: t < num_frames, body, loop_vars)
    return results[1], dict(zip(names, results[2:]))


class _ServingModule(tf.Module):
    """Holds the model, the label table and the serving functions."""

    def __init__(self, model, labels, top_k, image_size, min_image_size, contract):
        super().__init__(name="movinet_serving")
        self.model = model
        self.labels = tf.Variable(labels, trainable=False, dtype=tf.string, name="labels")
        # The eval preprocessing the model expects (0 when unknown), for clients.
        self.image_size = tf.Variable(int(image_size or 0), trainable=False, name="image_size")
        self.min_image_size = tf.Variable(int(min_image_size or image_size or 0),
                                          trainable=False, name="min_image_size")
        self.frame_rate = tf.Variable(float(contract.frame_rate or 0.0) if contract else 0.0,
                                      trainable=False, dtype=tf.float32, name="frame_rate")
        self.input_contract = tf.Variable(contract.to_json() if contract else "",
                                          trainable=False, dtype=tf.string,
                                          name="input_contract")
        self.top_k = top_k
        time, height, width, _ = model.input_video_shape
        self.video_shape = [None, time, height, width, 3]

    def _outputs(self, logits):
        probabilities = tf.nn.softmax(logits, axis=-1)
        top_probs, top_indices = tf.math.top_k(probabilities, k=self.top_k)
        return {
            "logits": logits,
            "probabilities": probabilities,
            "top_k_labels": tf.gather(self.labels, top_indices),
            "top_k_probs": top_probs,
        }

    def classify_float(self, image):
        check = tf.debugging.assert_positive(
            tf.shape(image)[1], message="image: the clip has T=0 frames; expected "
                                        "[B, T >= 1, H, W, 3]")
        with tf.control_dependencies([check]):
            image = tf.identity(image)
        if self.model.is_stream:
            states = self.model.init_states(tf.shape(image))
            logits, _ = stream_frames(self.model, image, states)
        else:
            logits = self.model(image, training=False)
        return self._outputs(logits)

    def classify_uint8(self, image):
        return self.classify_float(tf.cast(image, tf.float32) / 255.0)


def _attach_functions(module, model):
    """Creates the tf.functions and returns the signatures dict."""
    video = tf.TensorSpec(module.video_shape, tf.float32, name="image")
    video_uint8 = tf.TensorSpec(module.video_shape, tf.uint8, name="image")
    classify = tf.function(
        lambda image: module.classify_uint8(image) if image.dtype == tf.uint8
        else module.classify_float(image))
    module.classify = classify
    signatures = {
        "serving_default": classify.get_concrete_function(video),
        "serving_uint8": classify.get_concrete_function(video_uint8),
    }
    if not model.is_stream:
        return signatures

    def init_states(input_shape):
        checks = [
            tf.debugging.assert_equal(
                tf.size(input_shape), 5,
                message="init_states: input_shape must have 5 elements [B, T, H, W, 3]"),
            tf.debugging.assert_positive(
                input_shape, message="init_states: every element of input_shape "
                                     "[B, T, H, W, 3] must be >= 1"),
        ]
        with tf.control_dependencies(checks):
            input_shape = tf.ensure_shape(tf.identity(input_shape), [5])
        return model.init_states(input_shape)

    module.init_states = tf.function(init_states)
    signatures["init_states"] = module.init_states.get_concrete_function(
        # [None], not [5]: a signature does not check static shapes, so the length is
        # checked inside, where a wrong one gets a message naming input_shape.
        tf.TensorSpec([None], tf.int32, name="input_shape"))

    state_specs = model.state_specs([None, None, None, None, 3])
    names = list(state_specs)

    def call(image, *state_values):
        logits, new_states = stream_frames(model, image, dict(zip(names, state_values)))
        return {"logits": logits, **new_states}

    specs = [tf.TensorSpec(module.video_shape, tf.float32, name="image")]
    specs += [tf.TensorSpec(spec.shape, spec.dtype, name=name) for name, spec in
              state_specs.items()]
    module.call = tf.function(call, input_signature=specs)
    signatures["call"] = module.call.get_concrete_function()
    return signatures


def export_saved_model(model, output_dir, labels=None, top_k=DEFAULT_TOP_K, overwrite=False,
                       image_size=None, min_image_size=None, contract=None):
    """Writes `model` as a SavedModel at `output_dir` (atomically).

    Args:
        model: a `MovinetClassifier` (base or stream).
        output_dir: the SavedModel directory to create.
        labels: class names (default ``class_<i>``), embedded for top-k.
        top_k: how many classes ``top_k_labels`` / ``top_k_probs`` hold (capped
            at the number of classes).
        overwrite: replace an existing `output_dir`.
        image_size, min_image_size: the eval crop and short side, stored as
            ``loaded.image_size`` / ``loaded.min_image_size`` for clients such
            as `python -m movinet_tf.stream` (0 when not given).
        contract: the `InputContract` the model was trained with, stored as
            ``loaded.input_contract`` (JSON) and ``loaded.frame_rate``; its
            sizes win over `image_size` / `min_image_size`. None: built from
            ``model.input_contract`` (set by `load_model`), else those sizes
            with the frame rate unknown (0.0).

    Returns:
        The output directory.

    Raises:
        ValueError: labels of the wrong length, or `output_dir` exists and
            `overwrite` is False.
    """
    output_dir = os.path.abspath(os.fspath(output_dir))
    check_replaceable(output_dir, overwrite)
    if labels is None:
        labels = [f"class_{i}" for i in range(model.num_classes)]
    labels = [str(label) for label in labels]
    if len(labels) != model.num_classes:
        raise ValueError(f"labels has {len(labels)} names; the model has {model.num_classes} "
                         "classes.")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}.")
    if contract is None:  # A model from `load_model` carries its training contract.
        contract = getattr(model, "input_contract", None)
    if contract is None and image_size:
        contract = InputContract(frame_rate=None, image_size=int(image_size),
                                 min_image_size=int(min_image_size or image_size))
    if contract is not None:
        image_size, min_image_size = contract.image_size[0], contract.min_image_size
    module = _ServingModule(model, labels, min(int(top_k), model.num_classes), image_size,
                            min_image_size, contract)
    signatures = _attach_functions(module, model)
    # Written beside the target and swapped in: a failed export leaves the old one.
    with atomic_io.temporary_dir(output_dir) as tmp_dir:
        tf.saved_model.save(module, tmp_dir, signatures=signatures)
    atomic_io.replace_dir(tmp_dir, output_dir)
    logging.info("Wrote SavedModel %s with signatures %s.", output_dir, sorted(signatures))
    return output_dir


# What `tf.saved_model.save` writes; a folder holding anything else is not replaced.
_SAVED_MODEL_ENTRIES = {"saved_model.pb", "saved_model.pbtxt", "variables", "assets",
                        "assets.extra", "fingerprint.pb", "keras_metadata.pb"}


def check_replaceable(output_dir, overwrite):
    """Refuses an `output_dir` that exists, unless overwriting an empty folder or a SavedModel.

    Raises:
        ValueError: naming what is in the way.
    """
    if not os.path.lexists(output_dir):
        return
    if not overwrite:
        raise ValueError(f"{output_dir!r} already exists; pass --overwrite (overwrite=True) to "
                         "replace it.")
    if not os.path.isdir(output_dir) or os.path.islink(output_dir):
        raise ValueError(f"{output_dir!r} is not a folder; --overwrite replaces only an existing "
                         "SavedModel or an empty folder.")
    entries = set(os.listdir(output_dir))
    if not entries:
        return
    foreign = sorted(entries - _SAVED_MODEL_ENTRIES)
    if "saved_model.pb" not in entries or foreign:
        shown = ", ".join(foreign[:5] or sorted(entries)[:5])
        raise ValueError(f"{output_dir!r} is not a SavedModel (it holds {shown}); --overwrite "
                         "replaces only an existing SavedModel or an empty folder.")
