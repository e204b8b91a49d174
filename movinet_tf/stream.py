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

import os  # noqa: E402
import sys  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from movinet_tf import atomic_io  # noqa: E402
from movinet_tf.data import frames as frames_lib  # noqa: E402
from movinet_tf.streaming import (Annotator, apply_size_flags, choose_rate,  # noqa: E402
                                  format_top_k, labels_for, open_model, plot_probabilities,
                                  softmax, stream_logits)

FLAGS = flags.FLAGS

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


# ------------------------------------------------------------------ outputs


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


# ------------------------------------------------------------------ running


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
    for frame, logits in stream_logits(model, frames, contract):
        probs = softmax(logits)
        if labels is None:
            labels = labels_for(model, len(probs))
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
    labels = None
    try:
        with frames:
            for _, logits in stream_logits(model, frames, contract):
                probs = softmax(logits)
                labels = labels or labels_for(model, len(probs))
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
