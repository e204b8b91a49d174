"""Streaming a MoViNet frame by frame: the models `python -m movinet_tf.stream` opens,
the one per-frame loop, and the outputs (top-k text, annotated video, probability plot).

* `open_model` opens a streaming ``.tflite`` (LiteRT, no TensorFlow), a stream
  SavedModel, or a training run (``model_dir`` / checkpoint) as an object with
  ``reset()``, ``step(frame [H, W, 3] float) -> logits [N]``, ``labels`` and
  ``contract`` (the `InputContract` it was trained with).
* `stream_logits` is the loop: it feeds frames one at a time from fresh states
  and yields each frame's logits; memory does not grow with the video.
* `choose_rate`, `sample_indices`: which frames of a video the model sees.
* `Annotator` writes the video with the top classes drawn on it;
  `plot_probabilities` the class probabilities over time.

The CLI (`movinet_tf.stream`) prints; nothing here does.
"""
import dataclasses
import os

import cv2
import numpy as np

from movinet_tf import atomic_io
from movinet_tf import cli
from movinet_tf.data import frames as frames_lib
from movinet_tf.data.contract import InputContract

_DEFAULT_IMAGE_SIZE = 172


# ------------------------------------------------------------------ models


class TFLiteModel:
    """A streaming .tflite model (LiteRT only, no TensorFlow)."""

    fixed_size = True

    def __init__(self, path, num_threads):
        from movinet_tf.export_lib.tflite_model import TFLiteStreamer
        self.streamer = TFLiteStreamer(path, num_threads=num_threads)
        self.contract = self.streamer.contract
        self.num_classes = int(self.streamer.runner.get_output_details()["logits"]["shape"][-1])
        self.labels = self.streamer.labels
        self.invoked = False

    def reset(self):
        self.streamer.reset()

    def step(self, frame):
        if not self.invoked:  # LiteRT logs its delegate from C++ on the first invoke.
            with cli.quiet_native_stderr():
                logits = self.streamer.step(frame)
            self.invoked = True
            return logits
        return self.streamer.step(frame)


class SavedModelModel:
    """A stream SavedModel with ``init_states`` and ``call`` signatures."""

    fixed_size = False

    def __init__(self, path):
        import tensorflow as tf  # Only this backend and the checkpoint one need TensorFlow.
        self.tf = tf
        try:
            self.loaded = tf.saved_model.load(path)
        except (tf.errors.OpError, ValueError, OSError) as error:
            raise cli.UserError(f"Cannot load SavedModel {path!r}: "
                                f"{str(error).strip().splitlines()[0]}") from error
        signatures = self.loaded.signatures
        if "init_states" not in signatures or "call" not in signatures:
            raise cli.UserError(f"SavedModel {path!r} has no init_states/call signatures (it is a "
                                "base model, or not exported by export/export_saved_model.py).")
        self.init_fn = signatures["init_states"]
        self.call_fn = signatures["call"]
        self.labels = None
        if hasattr(self.loaded, "labels"):
            self.labels = [label.decode() for label in self.loaded.labels.numpy()]
        self.num_classes = int(self.call_fn.structured_outputs["logits"].shape[-1] or 0) or None
        self.contract = self._read_contract()
        self.states = None

    def _read_contract(self):
        loaded = self.loaded
        stored = loaded.input_contract.numpy().decode() if hasattr(loaded, "input_contract") else ""
        if stored:
            return InputContract.from_dict(stored)
        size = int(loaded.image_size.numpy()) if hasattr(loaded, "image_size") else 0
        min_size = int(loaded.min_image_size.numpy()) if hasattr(loaded, "min_image_size") else 0
        size = size or _DEFAULT_IMAGE_SIZE
        return InputContract(frame_rate=None, image_size=size, min_image_size=max(min_size, size))

    def reset(self):
        self.states = None

    def step(self, frame):
        tf = self.tf
        image = tf.constant(frame[None, None], tf.float32)
        if self.states is None:
            self.states = self.init_fn(input_shape=tf.constant([1, 1] + list(frame.shape),
                                                               tf.int32))
        outputs = dict(self.call_fn(image=image, **self.states))
        logits = outputs.pop("logits")
        self.states = outputs
        return logits.numpy()[0]


class CheckpointModel:
    """A training checkpoint, run through the folded single-frame graph."""

    fixed_size = True

    def __init__(self, path, config, image_size):
        import tensorflow as tf  # Only this backend and the SavedModel one need TensorFlow.
        from movinet_tf.export_lib.ensemble_graph import make_frame_graph
        from movinet_tf.export_lib.loading import load_model
        loaded = load_model(config, path, image_size=image_size)
        if not loaded.model.is_stream:
            raise cli.UserError(f"{path!r} holds a base (non-causal) model; streaming needs a "
                                "stream model.")
        self.labels = loaded.labels
        self.contract = loaded.contract
        self.num_classes = loaded.model.num_classes
        self.graph = make_frame_graph(loaded.model, loaded.image_size)  # Ensembles too.
        self.step_fn = tf.function(self.graph.__call__, autograph=False)
        self.tf = tf
        self.reset()

    def reset(self):
        self.states = self.graph.init_states("frame")

    def step(self, frame):
        logits, self.states = self.step_fn(self.tf.constant(frame[None], self.tf.float32),
                                           self.states)
        return logits.numpy()[0]


def _import_tensorflow_quietly():
    """Imports TensorFlow with its import-time C++ lines hidden (TF 2.21 prints the oneDNN
    notice whatever TF_CPP_MIN_LOG_LEVEL says)."""
    with cli.quiet_native_stderr():
        import tensorflow  # noqa: F401


def open_model(path, config=None, image_size=None, num_threads=1):
    """Opens MODEL as the right kind of model; raises `cli.UserError` if it is none."""
    if not os.path.exists(path):
        raise cli.UserError(f"Model {path!r} does not exist.")
    if path.endswith(".tflite"):
        return TFLiteModel(path, num_threads)
    _import_tensorflow_quietly()
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb")):
        return SavedModelModel(path)
    return CheckpointModel(path, config, image_size)


def apply_size_flags(model, image_size=None, min_image_size=None):
    """The model's contract with --image_size / --min_image_size applied (checked)."""
    contract = model.contract
    if image_size:
        if model.fixed_size and (image_size, image_size) != tuple(contract.image_size):
            raise cli.UserError(f"--image_size {image_size} differs from the model's "
                                f"{contract.image_size[0]}x{contract.image_size[1]} input.")
        min_size = min_image_size or max(contract.min_image_size, image_size)
        contract = dataclasses.replace(contract, image_size=(image_size, image_size),
                                       min_image_size=min_size)
    elif min_image_size:
        contract = dataclasses.replace(contract, min_image_size=min_image_size)
    return contract


# ------------------------------------------------------------------ rate and outputs


def choose_rate(fps_flag, contract):
    """`(target_fps or None, reason)`: --fps if given, else the contract's frame rate."""
    trained = (f"the model was trained at {contract.frame_rate:g} fps" if contract.frame_rate
               else "the model records no frame rate")
    if fps_flag is not None:
        return float(fps_flag), f"--fps; {trained}"
    if contract.frame_rate:
        return contract.frame_rate, "the model's input contract: it was trained at that rate"
    return None, "every frame: the model records no frame rate (pass --fps to resample)"


# ------------------------------------------------------------------ outputs


def sample_indices(num_frames, video_fps, model_fps):
    """Indices of the frames `VideoFrames` keeps at `model_fps`, for a clip already in memory.

    Keeps every frame when `model_fps` is None or not below the video's rate.
    """
    if not model_fps or not video_fps:
        return np.arange(num_frames)
    kept, slot = [], None
    for index in range(num_frames):
        keep, slot_now = frames_lib.keeps_frame(index, video_fps, model_fps, slot)
        if keep:
            kept.append(index)
            slot = slot_now
    return np.asarray(kept, np.int64)


def softmax(logits):
    shifted = np.exp(logits - np.max(logits))
    return shifted / shifted.sum()


def format_top_k(probabilities, labels, k):
    order = np.argsort(-probabilities)[:k]
    return " | ".join(f"{labels[i]} {probabilities[i]:.2f}" for i in order)


class Annotator:
    """Writes the input frames with the current top-3 drawn on them, frame by frame.

    ``.mp4`` is mp4v and ``.avi`` MJPG, through FFmpeg, at the rate fed to the
    model, so the video plays at real speed. FFmpeg rounds odd sizes down, so an
    odd-sized ``.avi`` goes through OpenCV's own MJPEG writer (same size; it
    stores a whole-number rate) and an odd-sized ``.mp4`` is refused rather
    than written smaller.
    """

    def __init__(self, path, fps, frame_size, fourcc_path=None):
        height, width = frame_size
        extension = os.path.splitext(fourcc_path or path)[1].lower()
        if extension == ".avi" and (height % 2 or width % 2):
            # FFmpeg rounds odd sizes down; OpenCV's own MJPEG writer keeps them (it
            # stores the rate as a whole number of frames per second).
            self.writer = cv2.VideoWriter(path, cv2.CAP_OPENCV_MJPEG,
                                          cv2.VideoWriter_fourcc(*"MJPG"), float(fps),
                                          (width, height))
        else:
            fourcc = "MJPG" if extension == ".avi" else "mp4v"
            self.writer = cv2.VideoWriter(path, cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc),
                                          float(fps), (width, height))
        if not self.writer.isOpened():
            raise cli.UserError(f"OpenCV cannot write {fourcc_path or path!r}.")
        self.frame_size = frame_size
        self.layout = None

    def _layout(self, lines):
        """Font scale, thickness and line height that fit 3 lines inside the frame."""
        height, width = self.frame_size
        margin = max(2, width // 100)
        font = cv2.FONT_HERSHEY_SIMPLEX
        longest = max(lines, key=len) + "0"  # Room for a longer label on later frames.
        (text_width, text_height), baseline = cv2.getTextSize(longest, font, 1.0, 2)
        scale = min((height / 10.0) / (text_height + baseline),
                    (width - 3 * margin) / max(text_width, 1))
        scale = max(scale, 0.25)
        thickness = max(1, int(round(scale * 1.5)))
        line_height = int(np.ceil((text_height + baseline) * scale)) + margin
        return font, scale, thickness, line_height, margin

    def write(self, frame_bgr, lines):
        """Draws `lines` on a copy of the BGR frame `[H, W, 3]` and appends it."""
        if self.layout is None:
            self.layout = self._layout(lines)
        font, scale, thickness, line_height, margin = self.layout
        bgr = frame_bgr.copy()
        height, width = bgr.shape[:2]
        box_width = min(width, 2 * margin + max(
            cv2.getTextSize(line, font, scale, thickness)[0][0] for line in lines))
        box_height = min(height, margin + line_height * len(lines))
        box = bgr[:box_height, :box_width]
        box[:] = (box.astype(np.uint16) * 2 // 5).astype(np.uint8)  # Darken: text reads on any frame.
        for i, line in enumerate(lines):
            baseline_y = (i + 1) * line_height - margin // 2
            if baseline_y > height:
                break
            cv2.putText(bgr, line, (margin, baseline_y), font, scale, (255, 255, 255), thickness,
                        cv2.LINE_AA)
        self.writer.write(bgr)

    def close(self):
        self.writer.release()


def plot_probabilities(path, times, probabilities, labels, num_classes=5):
    """Draws the probabilities of the final top classes over time into a PNG (atomically)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    probabilities = np.asarray(probabilities)
    top = np.argsort(-probabilities[-1])[:num_classes]
    figure, axes = plt.subplots(figsize=(8, 4))
    try:
        for index in top:
            axes.plot(times, probabilities[:, index], label=labels[index])
        axes.set_xlabel("time (s)")
        axes.set_ylabel("probability")
        axes.set_ylim(0.0, 1.0)
        axes.legend(loc="upper left", fontsize="small")
        axes.set_title("Streaming class probabilities")
        figure.tight_layout()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic_io.temporary_path(path, suffix=".png") as tmp:
            figure.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(figure)


def labels_for(model, num_classes):
    """The model's class names, or ``class_<i>`` when it has none (or the wrong number)."""
    labels = model.labels
    if labels is None or len(labels) != num_classes:
        labels = [f"class_{i}" for i in range(num_classes)]
    return labels



def stream_logits(model, frames, contract=None):
    """Feeds `frames` to `model` one at a time, from fresh states; yields ``(frame, logits)``.

    The one per-frame loop of the stream CLI and the library: nothing but the
    current frame and the model's states is held.

    Args:
        model: a streamer with ``reset()`` and ``step(frame) -> logits [N]`` (`open_model`'s
            models, `movinet_tf.export_lib.TFLiteStreamer`).
        frames: a `movinet_tf.data.frames.VideoFrames` (decoded BGR frames, preprocessed
            here with `contract`), or, with `contract` None, model-ready float frames
            [H, W, 3] (e.g. an array [T, H, W, 3]).
        contract: the `InputContract` to preprocess decoded frames with.

    Yields:
        ``(frame, logits [N] float32)`` for every frame, as soon as it is processed.
    """
    model.reset()
    for frame in frames:
        image = (frame if contract is None
                 else frames_lib.preprocess_frame(frame.bgr, contract, bgr=True))
        yield frame, np.asarray(model.step(image), np.float32).reshape(-1)
