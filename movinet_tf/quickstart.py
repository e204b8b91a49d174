"""The README's main job: train A0-Stream on the builtin set, export TFLite, stream a video.

    python -m movinet_tf.quickstart --model_dir runs/quickstart

Three stages, each printing its progress:

1. ``train``: `movinet_tf.train` with ``configs/a0_stream_builtin.yaml`` (the builtin
   synthetic action set, generated on first use; 2400 steps). Killed and restarted, it
   resumes from the last checkpoint; a finished run is not trained again.
2. ``export``: the trained weights become a single-frame streaming TFLite model
   (``<model_dir>/export/a0_stream.tflite`` + labels + JSON state manifest).
3. ``stream``: a validation video of the builtin set goes through the TFLite model one
   frame at a time on the LiteRT interpreter, exactly as the Android demo runs it. The
   same frames also go through the Keras model, and the largest logit difference is
   printed.

``--set`` overrides the config as in `movinet_tf.train` (e.g. ``--set train.steps=100``
for a quicker, less accurate run).

Errors are one line (exit status 2); ``--verbose`` shows TensorFlow's log lines
and tracebacks.
"""
from movinet_tf import cli

if __name__ == "__main__":  # Before TensorFlow is imported.
    cli.quiet_tensorflow()
    cli.import_tensorflow()

import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from absl import app, flags  # noqa: E402

from movinet_tf import atomic_io  # noqa: E402

FLAGS = flags.FLAGS
DEFAULT_CONFIG = "a0_stream_builtin"
DEFAULT_MODEL_DIR = "runs/quickstart"


def define_flags():
    """Defines the CLI flags when run as a program.

    ``--config``, ``--model_dir`` and ``--set`` are the flags of `movinet_tf.train`
    (imported here), with the quickstart's own defaults applied in `main`.
    """
    from movinet_tf import train
    train.define_flags()
    flags.DEFINE_integer("video_index", 0, "Which validation video of the builtin set to stream.")


def _banner(text):
    print(f"\n=== {text} ===", flush=True)


def _validation_video(cfg, index):
    """(path, label) of one validation video of the config's builtin dataset."""
    from movinet_tf.data import builtin
    root = builtin.ensure_builtin(cfg.data)
    paths, labels = builtin.list_videos(root, "val")
    if not paths:
        raise ValueError(f"The builtin dataset at {root!r} has no validation videos.")
    # Spread the pick over the classes: video i of the list ordered class by class.
    per_class = max(1, len(paths) // cfg.data.num_classes)
    pick = (index * per_class + index // cfg.data.num_classes) % len(paths)
    return paths[pick], int(labels[pick])


def _keras_stream_logits(model, frames):
    """Logits after each frame, [T, num_classes], from the Keras stream model."""
    import numpy as np
    import tensorflow as tf
    video = tf.convert_to_tensor(frames[None])
    states = model.init_states(video.shape)
    out = []
    for t in range(video.shape[1]):
        logits, states = model({**states, "image": video[:, t:t + 1]}, training=False)
        out.append(logits.numpy()[0])
    return np.stack(out)


def plot_learning_curve(model_dir, path):
    """Plots the training losses logged in ``model_dir/train`` (TensorBoard events) to a PNG.

    Cross-entropy and the L2 term are drawn apart, with the learning rate on a
    second axis. Returns `path`, or None when nothing was logged.
    """
    import glob
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tensorflow as tf
    from movinet_tf import atomic_io
    curves = {}
    for name in sorted(glob.glob(os.path.join(model_dir, "train", "events*"))):
        for event in tf.compat.v1.train.summary_iterator(name):
            for value in event.summary.value:
                curves.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    if "train/cross_entropy" not in curves:
        return None
    figure, axis = plt.subplots(figsize=(7, 4))
    for tag, label in (("train/cross_entropy", "cross-entropy"), ("train/regularization", "L2 term"),
                       ("train/top1", "train top-1")):
        steps = sorted(curves.get(tag, {}))
        axis.plot(steps, [curves[tag][s] for s in steps], label=label)
    axis.set_xlabel("step")
    axis.grid(alpha=0.3)
    rate = curves.get("train/learning_rate", {})
    lr_axis = axis.twinx()
    lr_axis.plot(sorted(rate), [rate[s] for s in sorted(rate)], color="grey", linestyle=":",
                 label="learning rate")
    lr_axis.set_ylabel("learning rate")
    handles = axis.get_legend_handles_labels()
    more = lr_axis.get_legend_handles_labels()
    axis.legend(handles[0] + more[0], handles[1] + more[1], loc="upper right")
    figure.tight_layout()
    with atomic_io.temporary_path(path) as tmp:
        figure.savefig(tmp)
    plt.close(figure)
    return path


def run_quickstart(config, model_dir, overrides=(), video_index=0):
    """Runs the three stages; returns a summary dict (also written to model_dir)."""
    import numpy as np
    from movinet_tf import config as config_lib
    from movinet_tf import export_lib, stream, streaming, train
    from movinet_tf.data import class_names
    from movinet_tf.data import frames as frames_lib

    cfg = config_lib.load_config(config, list(overrides))
    if cfg.data.source != "builtin":
        raise ValueError(f"The quickstart trains on the builtin dataset; config {config!r} has "
                         f"data.source={cfg.data.source!r}. Use `python -m movinet_tf.train` "
                         "for other data.")
    if not cfg.model.stream:
        raise ValueError(f"The quickstart exports a streaming TFLite model; config {config!r} "
                         "has model.stream=false.")
    summary = {"config": str(config), "model_dir": model_dir}
    started = time.time()

    _banner(f"1/3 train {cfg.model.model_id}-{'stream' if cfg.model.stream else 'base'} on the "
            f"builtin dataset ({cfg.train.steps} steps) -> {model_dir}")
    results = train.train_and_evaluate(cfg, model_dir, mode="train_and_eval")
    summary["train_seconds"] = round(time.time() - started, 1)
    curve = plot_learning_curve(model_dir, os.path.join(model_dir, "learning_curve.png"))
    if curve:
        print(f"Learning curve: {curve}")
        summary["learning_curve"] = curve
    summary["eval"] = {mode: {k: float(v) for k, v in metrics.items()
                              if isinstance(v, (int, float, np.floating))}
                       for mode, metrics in results.items()}

    _banner("2/3 export a single-frame streaming TFLite model")
    export_dir = os.path.join(model_dir, "export")
    tflite_name = f"{cfg.model.model_id}_{'stream' if cfg.model.stream else 'base'}.tflite"
    loaded = export_lib.load_model(None, model_dir)
    exported = export_lib.export_tflite(
        loaded.model, os.path.join(export_dir, tflite_name), image_size=loaded.image_size,
        min_image_size=loaded.min_image_size, quantize="none", labels=loaded.labels)
    print(f"Wrote {exported.model_path} ({exported.size_bytes / 1e6:.2f} MB), "
          f"{exported.labels_path}, {exported.manifest_path}")
    print(f"{exported.num_states} state tensors, {exported.state_bytes / 2**10:.1f} KiB per frame "
          "in each direction.")
    summary["tflite"] = exported.model_path
    summary["tflite_states"] = exported.num_states

    _banner("3/3 stream a validation video through the TFLite model, one frame at a time")
    video_path, label = _validation_video(cfg, video_index)
    names = class_names(cfg.data)
    print(f"True class: {names[label]}")
    # The default of `python -m movinet_tf.stream`: the rate the manifest's input contract
    # records (the model was trained on every `temporal_stride`-th frame).
    tflite_model = streaming.TFLiteModel(exported.model_path, num_threads=1)
    contract = tflite_model.contract
    final, labels = stream.run_file(video_path, tflite_model, top_k=3)
    predicted = int(np.argmax(final))

    # The same frames, one at a time, through the Keras model and the file again.
    with frames_lib.VideoFrames(video_path, target_fps=contract.frame_rate) as frames:
        inputs = np.stack([frames_lib.preprocess_frame(frame.bgr, contract, bgr=True)
                           for frame in frames])
    keras_logits = _keras_stream_logits(loaded.model, inputs.astype(np.float32))
    tflite_model.reset()
    tflite_logits = np.stack([tflite_model.step(frame) for frame in inputs])
    tflite_logits = tflite_logits.reshape(keras_logits.shape)
    max_error = float(np.max(np.abs(keras_logits - tflite_logits)))
    print(f"TFLite vs Keras, {len(inputs)} frames: max |logit difference| {max_error:.2e}")

    summary.update({"video": video_path, "true_class": names[label],
                    "predicted_class": labels[predicted] if labels else str(predicted),
                    "tflite_vs_keras_max_logit_error": max_error,
                    "total_seconds": round(time.time() - started, 1)})
    path = os.path.join(model_dir, "quickstart_summary.json")
    atomic_io.write_text(path, json.dumps(summary, indent=2))

    _banner("done")
    for mode, metrics in summary["eval"].items():
        shown = ", ".join(f"{k} {v:.1%}" if "top" in k else f"{k} {v:.4g}"
                          for k, v in metrics.items())
        print(f"validation ({mode}): {shown}")
    print(f"streamed {os.path.basename(video_path)}: true {names[label]}, predicted "
          f"{summary['predicted_class']}")
    print(f"total {summary['total_seconds']:.0f}s; summary in {path}")
    print(f"Next: python -m movinet_tf.stream VIDEO.mp4 --model {exported.model_path}")
    return summary


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    run_quickstart(FLAGS.config or DEFAULT_CONFIG, FLAGS.model_dir or DEFAULT_MODEL_DIR,
                   FLAGS.set, FLAGS.video_index)


def run():
    cli.quiet_tensorflow()
    define_flags()
    cli.run(main)


if __name__ == "__main__":
    run()
