"""Streams a video through a MoViNet one frame at a time and prints what it sees.

    python -m movinet_tf.stream clip.mp4 --model model.tflite
    python -m movinet_tf.stream clip.mp4 --model /tmp/a0_savedmodel --fps 5 --plot probs.png
    python -m movinet_tf.stream clip.mp4 --model runs/tiny --annotate out.mp4   # a model_dir
    python -m movinet_tf.stream --camera 0 --model model.tflite

MODEL is a streaming .tflite (from export/export_tflite.py), a SavedModel
directory (from export/export_saved_model.py, stream model) or a training
``model_dir`` / checkpoint (with its config.yaml, or --config). Frames are
decoded with OpenCV and preprocessed like evaluation (short side resized to
``min_image_size``, centre crop of ``image_size``), optionally resampled to
``--fps``; a top-k line is printed for every second of video, then the final
prediction. A missing, corrupt or too short video ends with a one-line error
and exit status 2.
"""
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS


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
    flags.DEFINE_float("fps", None, "Feed the model at this frame rate (default: every frame).")
    flags.DEFINE_integer("top_k", 3, "Classes per printed line.")
    flags.DEFINE_integer("min_frames", 2, "Fewest frames (after --fps) a video must give.")
    flags.DEFINE_integer("max_frames", None, "Stop after this many input frames.")
    flags.DEFINE_integer("num_threads", 1, "CPU threads for a .tflite model.")
    flags.DEFINE_string("plot", None, "Write class probabilities over time to this PNG.")
    flags.DEFINE_string("annotate", None, "Write the video with the current top-3 to this .mp4.")


_DEFAULT_IMAGE_SIZE = 172


class StreamError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


# ------------------------------------------------------------------ models


class TFLiteModel:
    """A streaming .tflite model."""

    def __init__(self, path, num_threads):
        from movinet_tf.export_lib import TFLiteStreamer
        self.streamer = TFLiteStreamer(path, num_threads=num_threads)
        self.image_size = int(self.streamer.image_size[0])
        manifest = self.streamer.manifest or {}
        self.min_image_size = manifest.get("min_image_size") or None
        self.labels = self.streamer.labels
        self.fixed_size = True

    def reset(self):
        self.streamer.reset()

    def step(self, frame):
        return self.streamer.step(frame)


class SavedModelModel:
    """A stream SavedModel with ``init_states`` and ``call`` signatures."""

    def __init__(self, path):
        import tensorflow as tf
        self.tf = tf
        self.loaded = tf.saved_model.load(path)
        signatures = self.loaded.signatures
        if "init_states" not in signatures or "call" not in signatures:
            raise StreamError(f"SavedModel {path!r} has no init_states/call signatures (it is a "
                              "base model, or not exported by export/export_saved_model.py).")
        self.init_fn = signatures["init_states"]
        self.call_fn = signatures["call"]
        self.labels = None
        if hasattr(self.loaded, "labels"):
            self.labels = [label.decode() for label in self.loaded.labels.numpy()]
        size = int(self.loaded.image_size.numpy()) if hasattr(self.loaded, "image_size") else 0
        min_size = (int(self.loaded.min_image_size.numpy())
                    if hasattr(self.loaded, "min_image_size") else 0)
        self.image_size = size or None
        self.min_image_size = min_size or None
        self.fixed_size = False
        self.states = None

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

    def __init__(self, path, config, image_size):
        import tensorflow as tf
        from movinet_tf.export_lib import load_model
        from movinet_tf.export_lib.ensemble_graph import make_frame_graph
        loaded = load_model(config, path, image_size=image_size)
        if not loaded.model.is_stream:
            raise StreamError(f"{path!r} holds a base (non-causal) model; streaming needs a "
                              "stream model.")
        self.labels = loaded.labels
        self.image_size = loaded.image_size
        self.min_image_size = loaded.min_image_size
        self.graph = make_frame_graph(loaded.model, loaded.image_size)  # Ensembles too.
        self.step_fn = tf.function(self.graph.__call__, autograph=False)
        self.fixed_size = True
        self.tf = tf
        self.reset()

    def reset(self):
        self.states = self.graph.init_states("gpu")

    def step(self, frame):
        logits, self.states = self.step_fn(self.tf.constant(frame[None], self.tf.float32),
                                           self.states)
        return logits.numpy()[0]


def open_model(path, config=None, image_size=None, num_threads=1):
    """Opens MODEL as the right kind of model; raises StreamError if it is none."""
    if not os.path.exists(path):
        raise StreamError(f"Model {path!r} does not exist.")
    if path.endswith(".tflite"):
        return TFLiteModel(path, num_threads)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb")):
        return SavedModelModel(path)
    return CheckpointModel(path, config, image_size)


# ------------------------------------------------------------------ frames


def sample_indices(num_frames, video_fps, model_fps):
    """Indices of the frames to feed so the model sees `model_fps` frames per second.

    Keeps every frame when `model_fps` is None or not below the video's rate.
    """
    if not model_fps or not video_fps or model_fps >= video_fps:
        return np.arange(num_frames)
    times = np.arange(num_frames) / video_fps
    slots = np.floor(times * model_fps + 1e-9).astype(int)
    first = np.concatenate([[True], slots[1:] != slots[:-1]])
    return np.nonzero(first)[0]


def softmax(logits):
    shifted = np.exp(logits - np.max(logits))
    return shifted / shifted.sum()


def format_top_k(probabilities, labels, k):
    order = np.argsort(-probabilities)[:k]
    return " | ".join(f"{labels[i]} {probabilities[i]:.2f}" for i in order)


class Annotator:
    """Writes the input video with the current top-3 drawn on it (atomic rename at the end)."""

    def __init__(self, path, fps, frame_shape):
        import cv2
        self.cv2 = cv2
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                                        suffix=".mp4", dir=directory)
        os.close(fd)
        height, width = frame_shape[:2]
        self.writer = cv2.VideoWriter(self.tmp, cv2.VideoWriter_fourcc(*"mp4v"),
                                      float(fps or 25.0), (width, height))
        if not self.writer.isOpened():
            os.remove(self.tmp)
            raise StreamError(f"OpenCV cannot write {path!r} (mp4v).")

    def write(self, frame_rgb, lines):
        cv2 = self.cv2
        bgr = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
        scale = max(0.35, frame_rgb.shape[0] / 480.0)
        for i, line in enumerate(lines):
            y = int((i + 1) * 22 * scale)
            cv2.putText(bgr, line, (5, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0),
                        3, cv2.LINE_AA)
            cv2.putText(bgr, line, (5, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale,
                        (255, 255, 255), 1, cv2.LINE_AA)
        self.writer.write(bgr)

    def close(self):
        self.writer.release()
        os.replace(self.tmp, self.path)

    def abort(self):
        self.writer.release()
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


def plot_probabilities(path, times, probabilities, labels, num_classes=5):
    """Draws the probabilities of the final top classes over time into a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    probabilities = np.asarray(probabilities)
    top = np.argsort(-probabilities[-1])[:num_classes]
    figure, axes = plt.subplots(figsize=(8, 4))
    for index in top:
        axes.plot(times, probabilities[:, index], label=labels[index])
    axes.set_xlabel("time (s)")
    axes.set_ylabel("probability")
    axes.set_ylim(0.0, 1.0)
    axes.legend(loc="upper left", fontsize="small")
    axes.set_title("Streaming class probabilities")
    figure.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".png",
                               dir=directory)
    os.close(fd)
    try:
        figure.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(figure)
        if os.path.exists(tmp):
            os.remove(tmp)


# ------------------------------------------------------------------ running


def _preprocess(frames_uint8, image_size, min_image_size):
    from movinet_tf.data import preprocess_eval_frames
    return preprocess_eval_frames(frames_uint8, image_size, min_image_size)


def stream_frames(model, frames, video_fps, times, image_size, min_image_size, top_k,
                  annotator=None, out=sys.stdout):
    """Feeds uint8 frames [T, H, W, 3] one at a time; prints a line per second of video.

    Args:
        times: timestamp (s) of each frame.

    Returns:
        (probabilities [T, N], labels).
    """
    labels = model.labels
    probabilities = []
    next_report = 1.0
    chunk = 64
    for start in range(0, len(frames), chunk):
        batch = _preprocess(frames[start:start + chunk], image_size, min_image_size)
        for offset, frame in enumerate(batch):
            index = start + offset
            logits = model.step(frame)
            if labels is None or len(labels) != len(logits):
                labels = [f"class_{i}" for i in range(len(logits))]
            probs = softmax(logits)
            probabilities.append(probs)
            if annotator is not None:
                order = np.argsort(-probs)[:3]
                annotator.write(frames[index], [f"{labels[i]} {probs[i]:.2f}" for i in order])
            if times[index] + 1e-9 >= next_report:
                print(f"{times[index]:7.2f}s  {format_top_k(probs, labels, top_k)}", file=out)
                next_report = np.floor(times[index]) + 1.0
    return np.stack(probabilities), labels


def run_file(video_path, model, fps=None, top_k=3, min_frames=2, max_frames=None, plot=None,
             annotate=None, out=sys.stdout):
    """Streams a video file; returns (final probabilities [N], labels)."""
    from movinet_tf.data import VideoDecodeError, read_video
    try:
        frames, video_fps = read_video(video_path, max_frames=max_frames)
    except FileNotFoundError as error:
        raise StreamError(str(error)) from error
    except VideoDecodeError as error:
        raise StreamError(str(error)) from error
    video_fps = video_fps or 25.0
    picks = sample_indices(len(frames), video_fps, fps)
    if len(picks) < min_frames:
        raise StreamError(f"Video {video_path!r} is too short: {len(frames)} frame(s), "
                          f"{len(picks)} after sampling at {fps or video_fps:g} fps; need at "
                          f"least {min_frames} (--min_frames).")
    image_size = model.image_size or _DEFAULT_IMAGE_SIZE
    min_image_size = max(model.min_image_size or image_size, image_size)
    frames = frames[picks]
    times = picks / video_fps
    print(f"{video_path}: {len(picks)} frames at {fps or video_fps:g} fps "
          f"({len(frames) / (fps or video_fps):.2f}s), model input {image_size}x{image_size}", file=out)
    annotator = Annotator(annotate, fps or video_fps, frames.shape[1:]) if annotate else None
    model.reset()
    try:
        probabilities, labels = stream_frames(model, frames, video_fps, times, image_size,
                                              min_image_size, top_k, annotator, out)
    except BaseException:
        if annotator is not None:
            annotator.abort()
        raise
    if annotator is not None:
        annotator.close()
        print(f"Wrote {annotate}", file=out)
    final = probabilities[-1]
    print(f"Final prediction after {len(probabilities)} frames: "
          f"{format_top_k(final, labels, top_k)}", file=out)
    if plot:
        plot_probabilities(plot, times, probabilities, labels)
        print(f"Wrote {plot}", file=out)
    return final, labels


def run_camera(index, model, top_k=3, max_frames=None, out=sys.stdout):
    """Streams a webcam until Ctrl-C or `max_frames`."""
    import cv2
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise StreamError(f"No camera at index {index} (OpenCV could not open it).")
    image_size = model.image_size or _DEFAULT_IMAGE_SIZE
    min_image_size = max(model.min_image_size or image_size, image_size)
    model.reset()
    count = 0
    labels = model.labels
    try:
        while max_frames is None or count < max_frames:
            ok, frame_bgr = capture.read()
            if not ok:
                if count == 0:
                    raise StreamError(f"Camera {index} opened but gave no frame.")
                break
            frame = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
            logits = model.step(_preprocess(frame, image_size, min_image_size))
            if labels is None or len(labels) != len(logits):
                labels = [f"class_{i}" for i in range(len(logits))]
            count += 1
            print(f"\rframe {count:6d}  {format_top_k(softmax(logits), labels, top_k)}",
                  end="", file=out, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        capture.release()
        print(file=out)


def main(argv):
    videos = argv[1:]
    if FLAGS.model is None:
        raise app.UsageError("--model is required (a .tflite, a SavedModel dir or a model_dir).")
    if FLAGS.camera is None and len(videos) != 1:
        raise app.UsageError("Give exactly one VIDEO path, or --camera INDEX.")
    try:
        model = open_model(FLAGS.model, FLAGS.config, FLAGS.image_size, FLAGS.num_threads)
        if FLAGS.image_size and model.fixed_size and FLAGS.image_size != model.image_size:
            raise StreamError(f"--image_size {FLAGS.image_size} differs from the model's "
                              f"{model.image_size}x{model.image_size} input.")
        if FLAGS.image_size:
            model.image_size = FLAGS.image_size
        if FLAGS.min_image_size:
            model.min_image_size = FLAGS.min_image_size
        if FLAGS.camera is not None:
            run_camera(FLAGS.camera, model, FLAGS.top_k, FLAGS.max_frames)
        else:
            run_file(videos[0], model, fps=FLAGS.fps, top_k=FLAGS.top_k,
                     min_frames=FLAGS.min_frames, max_frames=FLAGS.max_frames, plot=FLAGS.plot,
                     annotate=FLAGS.annotate)
    except StreamError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def run():
    define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
