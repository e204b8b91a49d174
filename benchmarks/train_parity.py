"""Training parity: our A0-stream (Keras 3) and the official one (tf_keras) trained on the same clips.

    python benchmarks/train_parity.py                                # quickstart recipe (Adam)
    python benchmarks/train_parity.py --recipe=k600                  # the published RMSprop recipe
    python benchmarks/train_parity.py --steps=40 --seeds=1 --size=32 # smoke run

The clips are decoded once with our pipeline (`movinet_tf.data`, the builtin set of
configs/a0_stream_builtin.yaml): `--epochs` augmented passes over the training split
(random crop, flip and start, as the trainer draws them) and the single-clip
validation views, stored as uint8 arrays in `--work_dir`. Both sides read the same
arrays in the same order, so preprocessing, augmentation and batches are identical.

Both sides train A0-stream ('2plus1d' convs, '2plus3d' SE, hard_swish / hard_sigmoid,
swish classifier, causal, no positional encoding), 10 classes, the config's dropout,
no stochastic depth, BatchNorm 0.99 / 1e-3, softmax cross-entropy with label
smoothing, L2 as the official task adds it (``l2(l2_weight_decay / 2)`` on every conv
kernel but the last classifier layer, added to the loss), per-tensor gradient
clipping, and the same schedule: linear warmup from 0, then cosine to 0 (Keras
`CosineDecay` with ``warmup_target``). Ours runs our trainer's own step
(`movinet_tf.training.step`) and optimizer (`movinet_tf.training.optimizer`); the
official model (tf-models-official) runs with ``TF_USE_LEGACY_KERAS=1`` in a
subprocess, with the tf_keras optimizer of the same name and hyper-parameters.

Printed: the cross-entropy (without the L2 term) of each logged window, mean over
seeds, and the final validation top-1, mean +- standard error over seeds, with
(ours - official) / the standard error of the difference. A PNG of the curves goes
to `--png` when matplotlib is installed.
"""
import json
import math
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app, flags  # noqa: E402

import _peer  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("recipe", "quickstart", ["quickstart", "k600"],
                  "quickstart: Adam as in configs/a0_stream_builtin.yaml; k600: the published "
                  "RMSprop recipe (rho 0.9, momentum 0.9, epsilon 1.0, lr 1.8 at batch 1024, "
                  "scaled linearly to --batch).")
flags.DEFINE_integer("frames", 8, "Frames per clip.")
flags.DEFINE_integer("size", 32, "Frame height and width (the crop).")
flags.DEFINE_integer("batch", 8, "Clips per step.")
flags.DEFINE_integer("steps", 300, "Optimizer steps per run.")
flags.DEFINE_integer("warmup_steps", 0, "Linear warmup steps; 0 = 1/12 of --steps (the "
                     "quickstart's share).")
flags.DEFINE_integer("epochs", 0, "Augmented passes over the training split to decode; 0 = "
                     "as many as --steps * --batch clips need.")
flags.DEFINE_integer("seeds", 3, "Seeds per side (initialisation and dropout).")
flags.DEFINE_integer("log_every", 25, "Steps per point of the cross-entropy curve.")
flags.DEFINE_string("work_dir", "/tmp/movinet_train_parity", "Where the decoded arrays and the "
                    "per-side results are written.")
flags.DEFINE_string("png", None, "PNG of the curves; default <work_dir>/train_parity_<recipe>.png.")
flags.DEFINE_string("worker", None, "Internal: 'ours' or 'official'; train --seeds runs on "
                    "<work_dir>/clips.npz and write <work_dir>/<worker>_<recipe>.json.")

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NUM_CLASSES = 10
_TRAIN_SEED_OFFSET = 1000


def _recipe():
    """The hyper-parameters both sides use, as our config's ``--set`` overrides and as a dict."""
    warmup = FLAGS.warmup_steps or max(1, FLAGS.steps // 12)
    if FLAGS.recipe == "quickstart":
        train = dict(optimizer="adam", base_learning_rate=0.002, base_batch_size=8,
                     epsilon=1.0e-7, momentum=0.0, rmsprop_rho=0.9)
    else:
        train = dict(optimizer="rmsprop", base_learning_rate=1.8, base_batch_size=1024,
                     epsilon=1.0, momentum=0.9, rmsprop_rho=0.9, depthwise_init="official")
    train.update(steps=FLAGS.steps, warmup_steps=warmup, schedule="cosine", clipnorm=1.0,
                 label_smoothing=0.1, l2_weight_decay=3.0e-5)
    return train


def _overrides():
    data = dict(num_frames=FLAGS.frames, image_size=FLAGS.size,
                min_image_size=max(FLAGS.size, (FLAGS.size * 64 + 55) // 56),
                batch_size=FLAGS.batch, eval_batch_size=FLAGS.batch, eval_num_clips=1,
                eval_num_crops=1)
    sets = [f"data.{k}={v}" for k, v in data.items()]
    sets += [f"train.{k}={v}" for k, v in _recipe().items()]
    return sets + ["model.stochastic_depth_drop_rate=0.0"]


def _our_config():
    from movinet_tf import config as config_lib
    return config_lib.load_config("a0_stream_builtin", _overrides())


def _clips_path():
    return os.path.join(FLAGS.work_dir, f"clips_{FLAGS.frames}x{FLAGS.size}.npz")


def _decode_clips(cfg):
    """Decodes the training passes and the validation clips once; saves them as uint8 arrays."""
    import numpy as np

    from movinet_tf import atomic_io
    from movinet_tf import data as data_lib
    from movinet_tf.data import builtin
    from movinet_tf.training import inputs

    builtin.ensure_builtin(cfg.data)
    needed = FLAGS.steps * FLAGS.batch
    train_videos, train_labels = [], []
    epoch = 0
    while sum(len(v) for v in train_videos) < needed or epoch < FLAGS.epochs:
        passes = data_lib.build_dataset(cfg.data, cfg.data.train_split, training=True,
                                        seed=inputs.pass_seed(cfg, epoch))
        for video, label in passes:
            train_videos.append(np.round(video.numpy() * 255).astype(np.uint8))
            train_labels.append(label.numpy().astype(np.int32))
        epoch += 1
        print(f"  decoded training pass {epoch}", flush=True)
    val_videos, val_labels = [], []
    for video, label in data_lib.build_dataset(cfg.data, cfg.data.eval_split, training=False):
        val_videos.append(np.round(video.numpy() * 255).astype(np.uint8))
        val_labels.append(label.numpy().astype(np.int32))
    arrays = dict(train_video=np.concatenate(train_videos), train_label=np.concatenate(train_labels),
                  val_video=np.concatenate(val_videos), val_label=np.concatenate(val_labels))
    with atomic_io.temporary_path(_clips_path()) as temporary:
        with open(temporary, "wb") as file:
            np.savez(file, **arrays)
    return epoch, {k: v.shape for k, v in arrays.items()}


def _batches(arrays, step):
    """Batch `step` of the training clips (floats in [0, 1]) and its labels; the same on both sides."""
    import numpy as np
    count = len(arrays["train_label"])
    index = (np.arange(FLAGS.batch) + step * FLAGS.batch) % count
    return arrays["train_video"][index].astype(np.float32) / 255.0, arrays["train_label"][index]


def _top1(predict, arrays):
    import numpy as np
    hits = 0
    videos, labels = arrays["val_video"], arrays["val_label"]
    for start in range(0, len(labels), FLAGS.batch):
        logits = predict(videos[start:start + FLAGS.batch].astype(np.float32) / 255.0)
        hits += int(np.sum(np.argmax(logits, -1) == labels[start:start + FLAGS.batch]))
    return hits / len(labels)


def _train_runs(make_run, arrays):
    """Runs `make_run(seed) -> (step_fn, predict_fn, params)` for each seed; returns the results."""
    import numpy as np
    runs = []
    for seed in range(FLAGS.seeds):
        step_fn, predict, params = make_run(_TRAIN_SEED_OFFSET + seed)
        curve, window = [], []
        for step in range(FLAGS.steps):
            video, labels = _batches(arrays, step)
            window.append(step_fn(video, labels))
            if len(window) == FLAGS.log_every or step == FLAGS.steps - 1:
                curve.append([step + 1, float(np.mean(window))])
                window = []
        if not all(math.isfinite(ce) for _, ce in curve):
            raise ValueError(f"seed {seed}: the cross-entropy is not finite: {curve}")
        runs.append({"seed": seed, "curve": curve, "val_top1": _top1(predict, arrays),
                     "params": params})
        print(json.dumps({"progress": f"seed {seed} done", "val_top1": runs[-1]["val_top1"]}),
              file=sys.stderr, flush=True)
    return runs


def _ours_worker(arrays):
    import keras
    import tensorflow as tf

    from movinet_tf.training import optimizer as optimizer_lib
    from movinet_tf.training import state as state_lib
    from movinet_tf.training import step as step_lib

    cfg = _our_config()

    def make_run(seed):
        keras.utils.set_random_seed(seed)
        model = state_lib.build_model(cfg)
        optimizer = optimizer_lib.make_optimizer(cfg)
        train_step = step_lib.make_train_step(cfg, model, optimizer, tf.distribute.get_strategy())

        def step_fn(video, labels):
            return float(train_step(tf.constant(video), tf.constant(labels))["cross_entropy"])

        predict = tf.function(lambda video: model(video, training=False))
        return step_fn, lambda v: predict(tf.constant(v)).numpy(), int(model.count_params())

    return _train_runs(make_run, arrays)


def _official_worker(arrays):
    import tensorflow as tf
    import tf_keras
    from official.projects.movinet.modeling import movinet, movinet_model

    recipe = _recipe()
    peak = recipe["base_learning_rate"] * FLAGS.batch / recipe["base_batch_size"]
    dropout = float(os.environ["PARITY_DROPOUT"])

    def make_run(seed):
        tf_keras.backend.clear_session()
        tf_keras.utils.set_random_seed(seed)
        # The official task's regulariser: l2(l2_weight_decay / 2) on the conv kernels.
        regularizer = tf_keras.regularizers.l2(recipe["l2_weight_decay"] / 2)
        spec = tf_keras.layers.InputSpec(shape=[None, FLAGS.frames, FLAGS.size, FLAGS.size, 3])
        backbone = movinet.Movinet(
            model_id="a0", input_specs=spec, use_sync_bn=False, output_states=True,
            stochastic_depth_drop_rate=0.0, kernel_regularizer=regularizer,
            **_peer.official_config("a0", stream=True))
        model = movinet_model.MovinetClassifier(
            backbone, num_classes=_NUM_CLASSES, input_specs={"image": spec}, activation="swish",
            dropout_rate=dropout, kernel_regularizer=regularizer, output_states=False)
        schedule = tf_keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0, decay_steps=max(FLAGS.steps - recipe["warmup_steps"], 1),
            alpha=0.0, warmup_target=peak, warmup_steps=recipe["warmup_steps"])
        if recipe["optimizer"] == "adam":
            optimizer = tf_keras.optimizers.Adam(schedule, epsilon=recipe["epsilon"],
                                                 clipnorm=recipe["clipnorm"])
        else:
            optimizer = tf_keras.optimizers.RMSprop(
                schedule, rho=recipe["rmsprop_rho"], momentum=recipe["momentum"],
                epsilon=recipe["epsilon"], clipnorm=recipe["clipnorm"])
        loss_object = tf_keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=recipe["label_smoothing"])

        @tf.function
        def train_step(video, labels):
            with tf.GradientTape() as tape:
                logits = model({"image": video}, training=True)
                cross_entropy = loss_object(tf.one_hot(labels, _NUM_CLASSES), logits)
                loss = cross_entropy + tf.add_n(model.losses)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return cross_entropy

        predict = tf.function(lambda video: model({"image": video}, training=False))
        return (lambda v, y: float(train_step(tf.constant(v), tf.constant(y))),
                lambda v: predict(tf.constant(v)).numpy(), int(model.count_params()))

    return _train_runs(make_run, arrays)


def _result_path(side):
    return os.path.join(FLAGS.work_dir, f"{side}_{FLAGS.recipe}.json")


def _worker_argv(side):
    names = ("recipe", "frames", "size", "batch", "steps", "warmup_steps", "seeds", "log_every",
             "work_dir")
    return [sys.executable, os.path.abspath(__file__), f"--worker={side}"] + [
        f"--{name}={getattr(FLAGS, name)}" for name in names]


def _start_worker(side, dropout):
    if side == "official":
        env = _peer.official_env()
    else:
        env = dict(os.environ)
        env["PYTHONPATH"] = _REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["PARITY_DROPOUT"] = str(dropout)
    return subprocess.Popen(_worker_argv(side), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _mean_se(values):
    import numpy as np
    values = np.asarray(values, dtype=np.float64)
    se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(np.mean(values)), se


def _report(results):
    import numpy as np
    sides = [s for s in ("ours", "official") if s in results]
    curves = {s: np.mean([[ce for _, ce in run["curve"]] for run in results[s]], axis=0)
              for s in sides}
    steps = [step for step, _ in results[sides[0]][0]["curve"]]
    print("\ncross-entropy (no L2), mean over seeds, per logged window:")
    line = f"{'step':>6}" + "".join(f"{s:>10}" for s in sides)
    print(line)
    print("-" * len(line))
    for i, step in enumerate(steps):
        print(f"{step:>6}" + "".join(f"{curves[s][i]:>10.3f}" for s in sides))
    print("\nfinal val top-1 over seeds (mean +- standard error):")
    stats = {}
    for side in sides:
        tops = [run["val_top1"] for run in results[side]]
        stats[side] = _mean_se(tops)
        print(f"  {side:<9} {100 * stats[side][0]:5.1f}% +- {100 * stats[side][1]:.1f}  "
              f"(seeds: {', '.join(f'{100 * t:.1f}' for t in tops)}; "
              f"params {results[side][0]['params']:,})")
    if len(sides) == 2:
        (mean_a, se_a), (mean_b, se_b) = stats["ours"], stats["official"]
        se_diff = math.sqrt(se_a ** 2 + se_b ** 2)
        z = (mean_a - mean_b) / se_diff if se_diff > 0 else float("nan")
        print(f"  ours - official: {100 * (mean_a - mean_b):+.1f} points = {z:+.2f} standard errors "
              "(of the difference)")
    return steps, curves


def _write_png(steps, curves, title, path):
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no PNG written.")
        return
    matplotlib.use("Agg")
    from matplotlib import pyplot

    from movinet_tf import atomic_io

    figure, axes = pyplot.subplots(figsize=(6, 4))
    for side, curve in curves.items():
        axes.plot(steps, curve, label=side)
    axes.axhline(math.log(_NUM_CLASSES), color="grey", linestyle=":", label="chance (ln 10)")
    axes.set_xlabel("step")
    axes.set_ylabel("cross-entropy (mean over seeds)")
    axes.set_title(title, fontsize=9)
    axes.legend()
    figure.tight_layout()
    with atomic_io.temporary_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    pyplot.close(figure)
    print(f"curves: {path}")


def main(argv):
    del argv
    import numpy as np

    if FLAGS.worker is not None:
        with np.load(_clips_path()) as loaded:
            arrays = {k: loaded[k] for k in loaded.files}
        if FLAGS.worker == "ours":
            runs = _ours_worker(arrays)
        elif FLAGS.worker == "official":
            runs = _official_worker(arrays)
        else:
            raise ValueError(f"Unknown --worker {FLAGS.worker!r}; expected 'ours' or 'official'.")
        print(json.dumps(runs))
        return
    for name in ("frames", "size", "batch", "steps", "seeds", "log_every"):
        if getattr(FLAGS, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(FLAGS, name)}.")
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    cfg = _our_config()
    recipe = _recipe()
    peak = recipe["base_learning_rate"] * FLAGS.batch / recipe["base_batch_size"]
    header = (f"A0-stream training parity, recipe {FLAGS.recipe}: {recipe['optimizer']} peak lr "
              f"{peak:g} (warmup {recipe['warmup_steps']} + cosine), batch {FLAGS.batch} of "
              f"{FLAGS.frames}x{FLAGS.size}x{FLAGS.size}, {FLAGS.steps} steps, label smoothing "
              f"{recipe['label_smoothing']}, L2 {recipe['l2_weight_decay']}/2, clipnorm "
              f"{recipe['clipnorm']}, dropout {cfg.model.dropout_rate}, {FLAGS.seeds} seeds, "
              f"builtin set ({_NUM_CLASSES} classes)")
    print(header, flush=True)
    print("decoding the clips once with movinet_tf.data ...", flush=True)
    passes, shapes = _decode_clips(cfg)
    print(f"  {passes} training pass(es): {shapes}", flush=True)
    sides = ["ours"]
    if _peer.have_reference():
        sides.append("official")
    else:
        print(f"Official side skipped: {_peer.INSTALL_HINT}")
    # Both sides train at once: only accuracy is compared, and the wall time halves.
    workers = {side: _start_worker(side, cfg.model.dropout_rate) for side in sides}
    results = {}
    for side, process in workers.items():
        stdout, stderr = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{side} worker failed ({process.returncode}):\n{stderr[-3000:]}")
        results[side] = json.loads(stdout.strip().splitlines()[-1])
    steps, curves = _report(results)
    png = FLAGS.png or os.path.join(FLAGS.work_dir, f"train_parity_{FLAGS.recipe}.png")
    _write_png(steps, curves, f"A0-stream, {FLAGS.recipe}, batch {FLAGS.batch} of "
               f"{FLAGS.frames}x{FLAGS.size}^2, {FLAGS.steps} steps, {FLAGS.seeds} seeds", png)


if __name__ == "__main__":
    app.run(main)
