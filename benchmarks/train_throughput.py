"""Training throughput of A0-stream on CPU: ours (Keras 3) beside the official code (tf_keras).

    python benchmarks/train_throughput.py                          # 8 clips of 50x172x172
    python benchmarks/train_throughput.py --batch=2 --frames=16 --steps=2   # quick
    python benchmarks/train_throughput.py --subclips=2,4           # add rows for sub-clip training

Both sides train the same network on random clips, one after the other, each in
its own subprocess: A0-stream as released ('2plus1d' convs, '2plus3d' SE,
hard_swish / hard_sigmoid, swish classifier), 600 classes, stochastic depth 0.2,
dropout 0.2, BatchNorm in training mode, softmax cross-entropy, SGD with
momentum 0.9, one `tf.function` step = forward + backward + update, no XLA.
The official model (tf-models-official) runs with ``TF_USE_LEGACY_KERAS=1``.
One warm-up step (tracing) is not timed; clips/s = batch / median step time
(with `--repeats`, the best median over the repeats).
`--subclips` adds rows for ours trained with `movinet_tf.training.subclips` (frozen
BatchNorm, exact gradients, one extra forward pass over n-1 sub-clips).
"""
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app, flags  # noqa: E402

import _peer  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch", 8, "Clips per step.")
flags.DEFINE_integer("frames", 50, "Frames per clip.")
flags.DEFINE_integer("size", 172, "Frame height and width.")
flags.DEFINE_integer("steps", 3, "Timed steps after the warm-up step.")
flags.DEFINE_integer("repeats", 1, "Run each setting this many times, alternating, and keep "
                     "the fastest (the machine is shared, so the best run is the fairest).")
flags.DEFINE_list("subclips", [], "Also time ours trained in these numbers of sub-clips.")
flags.DEFINE_bool("no_official", False, "Time ours only.")
flags.DEFINE_string("worker", None, "Internal: 'ours', 'ours_subclipsN' or 'official'; time one "
                    "setting and print one JSON line.")

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NUM_CLASSES = 600
_DROP_RATE = 0.2


def _random_batch(np, tf):
    rng = np.random.default_rng(0)
    shape = (FLAGS.batch, FLAGS.frames, FLAGS.size, FLAGS.size, 3)
    video = tf.constant(rng.uniform(0, 1, shape).astype(np.float32))
    labels = tf.constant(rng.integers(0, _NUM_CLASSES, FLAGS.batch).astype(np.int32))
    return video, labels


def _time_steps(step, video, labels):
    """Runs one warm-up step and `--steps` timed ones; returns the median seconds."""
    import time

    import numpy as np

    float(step(video, labels))
    times = []
    for _ in range(FLAGS.steps):
        start = time.perf_counter()
        float(step(video, labels))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _ours(num_subclips):
    import keras
    import numpy as np
    import tensorflow as tf

    import movinet_tf
    from movinet_tf.training import subclips

    model = movinet_tf.build_model(
        "a0", stream=True, num_classes=_NUM_CLASSES, dropout_rate=_DROP_RATE,
        stochastic_depth_drop_rate=_DROP_RATE, input_shape=(None, FLAGS.size, FLAGS.size, 3))
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)

    def loss_fn(labels, logits):
        return tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))

    @tf.function
    def step(video, labels):
        variables = model.trainable_variables
        if num_subclips:
            loss, _, grads = subclips.subclip_loss_and_grads(
                model, video, labels, loss_fn, num_subclips, training=True)
        else:
            with tf.GradientTape() as tape:
                loss = loss_fn(labels, model(video, training=True))
            grads = tape.gradient(loss, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return loss

    video, labels = _random_batch(np, tf)
    return {"step_s": _time_steps(step, video, labels), "params": int(model.count_params())}


def _official():
    import numpy as np
    import tensorflow as tf
    import tf_keras
    from official.projects.movinet.modeling import movinet, movinet_model

    spec = tf_keras.layers.InputSpec(shape=[FLAGS.batch, FLAGS.frames, FLAGS.size, FLAGS.size, 3])
    backbone = movinet.Movinet(
        model_id="a0", input_specs=spec, use_sync_bn=False, output_states=True,
        stochastic_depth_drop_rate=_DROP_RATE, **_peer.official_config("a0", stream=True))
    model = movinet_model.MovinetClassifier(
        backbone, num_classes=_NUM_CLASSES, input_specs={"image": spec}, activation="swish",
        dropout_rate=_DROP_RATE, output_states=False)
    optimizer = tf_keras.optimizers.SGD(0.01, momentum=0.9)

    @tf.function
    def step(video, labels):
        with tf.GradientTape() as tape:
            logits = model({"image": video}, training=True)
            loss = tf.reduce_mean(tf_keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    video, labels = _random_batch(np, tf)
    return {"step_s": _time_steps(step, video, labels), "params": int(model.count_params())}


def _run_worker(name):
    if name == "official":
        env = _peer.official_env()
    else:
        env = dict(os.environ)
        env["PYTHONPATH"] = _REPO + os.pathsep + env.get("PYTHONPATH", "")
    argv = [sys.executable, os.path.abspath(__file__), f"--worker={name}",
            f"--batch={FLAGS.batch}", f"--frames={FLAGS.frames}", f"--size={FLAGS.size}",
            f"--steps={FLAGS.steps}"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{name} worker failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv):
    del argv
    if FLAGS.worker is not None:
        if FLAGS.worker == "official":
            result = _official()
        elif FLAGS.worker == "ours":
            result = _ours(0)
        elif FLAGS.worker.startswith("ours_subclips"):
            result = _ours(int(FLAGS.worker[len("ours_subclips"):]))
        else:
            raise ValueError(f"Unknown --worker {FLAGS.worker!r}; expected 'ours', "
                             "'ours_subclipsN' or 'official'.")
        print(json.dumps(result))
        return
    subclip_settings = [int(n) for n in FLAGS.subclips]
    if any(n < 1 or n > FLAGS.frames for n in subclip_settings):
        raise ValueError(f"--subclips must be between 1 and --frames={FLAGS.frames}, "
                         f"got {subclip_settings}.")
    rows = [("ours (Keras 3)", "ours")]
    rows += [(f"ours, {n} sub-clips", f"ours_subclips{n}") for n in subclip_settings]
    if not FLAGS.no_official:
        if _peer.have_reference():
            rows.append(("official (tf_keras)", "official"))
        else:
            print(f"Official side skipped: {_peer.INSTALL_HINT}")
    print(f"A0-stream training on CPU, batch {FLAGS.batch} of {FLAGS.frames}x{FLAGS.size}x"
          f"{FLAGS.size}, median of {FLAGS.steps} steps after one warm-up step, best of "
          f"{FLAGS.repeats} run(s)")
    header = f"{'implementation':<24}{'params':>11}{'step s':>9}{'clips/s':>9}"
    print(header)
    print("-" * len(header))
    results = {}
    for repeat in range(FLAGS.repeats):
        for label, worker in rows:
            result = _run_worker(worker)
            if worker not in results or result["step_s"] < results[worker]["step_s"]:
                results[worker] = result
            if repeat == FLAGS.repeats - 1:
                best = results[worker]
                print(f"{label:<24}{best['params']:>11,}{best['step_s']:>9.2f}"
                      f"{FLAGS.batch / best['step_s']:>9.3f}", flush=True)
    clips_per_s = {worker: FLAGS.batch / result["step_s"] for worker, result in results.items()}
    if "official" in clips_per_s:
        print(f"ours / official clips/s: {clips_per_s['ours'] / clips_per_s['official']:.2f}")


if __name__ == "__main__":
    app.run(main)
