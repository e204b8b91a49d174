"""Streams a video through a MoViNet one frame at a time and prints what it sees.

    python -m movinet_tf.stream clip.mp4 --model model.tflite
    python -m movinet_tf.stream clip.mp4 --model /tmp/a0_savedmodel --plot probs.png
    python -m movinet_tf.stream clip.mp4 --model runs/tiny --annotate out.mp4   # a model_dir
    python -m movinet_tf.stream --camera 0 --model model.tflite

MODEL is a streaming .tflite (from export/export_tflite.py), a SavedModel
directory (from export/export_saved_model.py, stream model) or a training
``model_dir`` / checkpoint (with its config.yaml, or --config).

Every model carries its input contract (`movinet_tf.data.contract`): the frame
rate it was trained at and its resize and crop sizes. Frames are decoded,
resampled to that rate (frames are dropped, never duplicated), resized and
cropped one at a time (`movinet_tf.data.frames`), so memory stays flat however
long the video; ``--fps`` overrides the rate. A top-k line is printed for every
second of video as soon as it is processed, then the final prediction. The
TFLite path runs on LiteRT, OpenCV and numpy and never imports TensorFlow.

A user error (missing, corrupt or too short video, bad model file, invalid
flag, an output that would overwrite the input) ends with one line
``error: ...`` and exit status 2.
"""
from movinet_tf import cli

cli.quiet_tensorflow()

import dataclasses  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from movinet_tf import atomic_io  # noqa: E402
from movinet_tf.data import frames as frames_lib  # noqa: E402
from movinet_tf.data.contract import InputContract  # noqa: E402

FLAGS = flags.FLAGS

_DEFAULT_IMAGE_SIZE = 172
_VIDEO_EXTENSIONS = (".mp4", ".avi")


def define_flags():
    """Defines the CLI flags (only when run as a program, so that importing this module
    next to another CLI, e.g. movinet_tf.train, never clashes on flag names)."""
    if "model" in FLAGS and "top_k" in FLAGS:
        return
    flags.DEFINE_string("model", None, "A .tflite file, a SavedModel dir, or a model_dir/checkpoint.")
    flags.DEFINE_string("config", None, "Training config for a checkpoint without config.yaml.")
    flags.DEFINE_integer("camera", None, "Read from this camera index instead of a file.")
    flags.DEFINE_integer("image_size", None, "Crop side (default: from the model, else 172).")
    flags.DEFINE_integer("min_image_size", None, "Short side before the crop (default: from the "
                         "model, else image_size).")
    flags.DEFINE_float("fps", None, "Feed the model this many frames per second (default: the "
                       "rate in the model's input contract, else every frame).")
    flags.DEFINE_integer("top_k", 3, "Classes per printed line.")
    flags.DEFINE_integer("min_frames", 2, "Fewest frames (after resampling) a video must give.")
    flags.DEFINE_integer("max_frames", None, "Stop after this many decoded frames.")
    flags.DEFINE_integer("num_threads", 1, "CPU threads for a .tflite model.")
    flags.DEFINE_string("plot", None, "Write class probabilities over time to this PNG.")
    flags.DEFINE_string("annotate", None, "Write the video with the current top-3 drawn on it "
                        "(.mp4: even frame sizes; .avi: MJPG, any size).")
    flags.DEFINE_bool("overwrite", False, "Replace an existing --plot / --annotate file.")


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
        self.states = self.graph.init_states("gpu")

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


def _same_file(a, b):
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path, flag, inputs, overwrite):
    """Refuses an output that is one of `inputs`, or an existing file without --overwrite."""
    for other in inputs:
        if other and _same_file(path, other):
            raise cli.UserError(f"--{flag} {path!r} is the input {other!r}; refusing to "
                                "overwrite it.")
    if os.path.isdir(path):
        raise cli.UserError(f"--{flag} {path!r} is a directory.")
    if os.path.exists(path) and not overwrite:
        raise cli.UserError(f"--{flag} {path!r} exists; pass --overwrite to replace it.")


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


# ------------------------------------------------------------------ running


def _labels_for(model, num_classes):
    labels = model.labels
    if labels is None or len(labels) != num_classes:
        labels = [f"class_{i}" for i in range(num_classes)]
    return labels


def stream_video(model, frames, contract, top_k=3, annotator=None, keep_probabilities=False,
                 out=sys.stdout):
    """Feeds the frames of a `VideoFrames` one at a time; prints a line per second of video.

    Returns:
        `(final probabilities [N], labels, times [T], probabilities [T, N] or None)`;
        only the per-frame probabilities are kept (for --plot), never a frame.
    """
    labels = None
    final = None
    times, history = [], []
    next_report = 1.0
    for frame in frames:
        probs = softmax(model.step(frames_lib.preprocess_frame(frame.bgr, contract, bgr=True)))
        if labels is None:
            labels = _labels_for(model, len(probs))
        final = probs
        if keep_probabilities:
            times.append(frame.time)
            history.append(probs.astype(np.float32))
        if annotator is not None:
            order = np.argsort(-probs)[:3]
            annotator.write(frame.bgr, [f"{labels[i]} {probs[i]:.2f}" for i in order])
        if frame.time + 1e-9 >= next_report:
            print(f"{frame.time:7.2f}s  {format_top_k(probs, labels, top_k)}", file=out,
                  flush=True)
            next_report = np.floor(frame.time + 1e-9) + 1.0
    return final, labels, np.asarray(times), (np.stack(history) if history else None)


def _describe_rate(frames, target, reason):
    source = f"{frames.source_fps:g} fps" + ("" if frames.source_fps_declared else
                                             " (the file declares none; assumed)")
    if target is None:
        return f"{source}; feeding {reason}"
    text = f"{source}; feeding {frames.fps:g} fps ({reason})"
    if target > frames.source_fps:
        text += (f"; the video has only {frames.source_fps:g} fps, so every frame is fed "
                 "(frames are never duplicated)")
    return text


def run_file(video_path, model, contract=None, fps=None, top_k=3, min_frames=2, max_frames=None,
             plot=None, annotate=None, out=sys.stdout, err=sys.stderr):
    """Streams a video file; returns (final probabilities [N], labels)."""
    contract = contract or model.contract
    target, reason = choose_rate(fps, contract)
    frames = frames_lib.VideoFrames(video_path, target_fps=target, max_frames=max_frames,
                                    prefetch=2)
    height, width = frames.frame_size
    declared = (f"{frames.declared_frames} frames" if frames.declared_frames else
                "frame count not declared")
    print(f"{video_path}: {width}x{height}, {declared}, "
          f"{_describe_rate(frames, target, reason)}; model input "
          f"{contract.image_size[0]}x{contract.image_size[1]} (short side "
          f"{contract.min_image_size})", file=out, flush=True)
    expected = frames.expected_frames()
    if expected is not None and expected < min_frames:
        frames.close()
        raise cli.UserError(f"Video {video_path!r} is too short: {frames.declared_frames} "
                            f"frame(s), {expected} at {frames.fps:g} fps; need at least "
                            f"{min_frames} (--min_frames).")
    if annotate:
        os.makedirs(os.path.dirname(os.path.abspath(annotate)), exist_ok=True)
    with frames, (atomic_io.temporary_path(annotate) if annotate else _no_path()) as tmp:
        annotator = (Annotator(tmp, frames.fps, frames.frame_size, fourcc_path=annotate)
                     if annotate else None)
        try:
            model.reset()
            final, labels, times, history = stream_video(
                model, frames, contract, top_k, annotator, keep_probabilities=bool(plot), out=out)
        finally:
            if annotator is not None:
                annotator.close()
        if frames.yielded < min_frames:
            raise cli.UserError(f"Video {video_path!r} is too short: {frames.decoded} frame(s), "
                                f"{frames.yielded} at {frames.fps:g} fps; need at least "
                                f"{min_frames} (--min_frames).")
    if frames.ended_early():
        print(f"warning: {video_path} ended after {frames.decoded} frames but its container "
              f"declares {frames.declared_frames}; the prediction covers the "
              f"{frames.decoded} decoded frames.", file=err, flush=True)
    if annotate:
        print(f"Wrote {annotate}", file=out)
    print(f"Final prediction after {frames.yielded} frames: "
          f"{format_top_k(final, labels, top_k)}", file=out, flush=True)
    if plot:
        plot_probabilities(plot, times, history, labels)
        print(f"Wrote {plot}", file=out)
    return final, labels


class _no_path:
    """A stand-in for `atomic_io.temporary_path` when nothing is written."""

    def __enter__(self):
        return None

    def __exit__(self, *exc_info):
        return False


def run_camera(index, model, contract=None, fps=None, top_k=3, max_frames=None, out=sys.stdout):
    """Streams a webcam until Ctrl-C or `max_frames`."""
    contract = contract or model.contract
    target, reason = choose_rate(fps, contract)
    frames = frames_lib.VideoFrames(index, target_fps=target, max_frames=max_frames)
    print(f"camera {index}: {_describe_rate(frames, target, reason)}", file=out, flush=True)
    model.reset()
    labels = None
    try:
        with frames:
            for frame in frames:
                probs = softmax(model.step(frames_lib.preprocess_frame(frame.bgr, contract,
                                                                       bgr=True)))
                labels = labels or _labels_for(model, len(probs))
                print(f"\rframe {frames.yielded:6d}  {format_top_k(probs, labels, top_k)}",
                      end="", file=out, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        print(file=out)
    if not frames.yielded:
        raise cli.UserError(f"Camera {index} opened but gave no frame.")


def check_flags(videos):
    """Refuses invalid flags before anything is opened (one line each, exit 2)."""
    if FLAGS.model is None:
        raise app.UsageError("--model is required (a .tflite, a SavedModel dir or a model_dir).")
    if FLAGS.camera is None and len(videos) != 1:
        raise app.UsageError("Give exactly one VIDEO path, or --camera INDEX.")
    if FLAGS.fps is not None and not FLAGS.fps > 0:
        raise cli.UserError(f"--fps must be > 0 (frames per second); got {FLAGS.fps:g}.")
    for name in ("top_k", "min_frames", "max_frames", "num_threads", "image_size",
                 "min_image_size"):
        value = FLAGS[name].value
        if value is not None and value < 1:
            raise cli.UserError(f"--{name} must be >= 1; got {value}.")
    if FLAGS.camera is not None and (FLAGS.plot or FLAGS.annotate):
        raise cli.UserError("--plot and --annotate work on a video file, not --camera.")
    if FLAGS.annotate and os.path.splitext(FLAGS.annotate)[1].lower() not in _VIDEO_EXTENSIONS:
        raise cli.UserError(f"--annotate {FLAGS.annotate!r} must end with "
                            f"{' or '.join(_VIDEO_EXTENSIONS)}.")
    if FLAGS.plot and not FLAGS.plot.lower().endswith(".png"):
        raise cli.UserError(f"--plot {FLAGS.plot!r} must end with .png.")
    if FLAGS.plot and FLAGS.annotate and _same_file(FLAGS.plot, FLAGS.annotate):
        raise cli.UserError("--plot and --annotate name the same file.")
    inputs = videos + [FLAGS.model]
    for flag in ("annotate", "plot"):
        if FLAGS[flag].value:
            check_output(FLAGS[flag].value, flag, inputs, FLAGS.overwrite)


def check_annotate_size(video, annotate):
    """An odd-sized video cannot be written as .mp4 at its own size: say so before streaming."""
    if not annotate or os.path.splitext(annotate)[1].lower() != ".mp4":
        return
    capture = cv2.VideoCapture(video)
    try:
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    if width % 2 or height % 2:
        raise cli.UserError(f"{video} is {width}x{height}; OpenCV writes .mp4 only at even sizes. "
                            "Give --annotate a .avi path (MJPG) to keep the size.")


def main(argv):
    videos = list(argv[1:])
    if not cli.verbose():
        logging.set_verbosity(logging.WARNING)  # No "Restored N weights" lines by default.
    check_flags(videos)
    if FLAGS.camera is None and os.path.isfile(videos[0]):
        check_annotate_size(videos[0], FLAGS.annotate)
    model = open_model(FLAGS.model, FLAGS.config, FLAGS.image_size, FLAGS.num_threads)
    contract = apply_size_flags(model, FLAGS.image_size, FLAGS.min_image_size)
    if model.num_classes and FLAGS.top_k > model.num_classes:
        raise cli.UserError(f"--top_k {FLAGS.top_k} is more than the model's "
                            f"{model.num_classes} classes.")
    if FLAGS.camera is not None:
        run_camera(FLAGS.camera, model, contract, FLAGS.fps, FLAGS.top_k, FLAGS.max_frames)
        return
    run_file(videos[0], model, contract, fps=FLAGS.fps, top_k=FLAGS.top_k,
             min_frames=FLAGS.min_frames, max_frames=FLAGS.max_frames, plot=FLAGS.plot,
             annotate=FLAGS.annotate)


def run():
    define_flags()
    cli.run(main)


if __name__ == "__main__":
    run()
