"""Peak training memory and step time of A0-stream trained in n sub-clips.

    python benchmarks/train_memory.py                      # 64x172x172, batch 1, n = 1 2 4 8
    python benchmarks/train_memory.py --frames=32 --steps=2 --subclips=1,4

Each row runs in a fresh subprocess, so peaks don't mix. Inside it, A0-stream
(600 classes) and an SGD optimizer are built, the RSS is read as the baseline,
then one warm-up step (tracing included) and `--steps` timed steps run. By default
(``--driver=pieces``) a step is the trainer's `subclips.SubclipGradients` (the
sub-clips run from Python through two traced pieces) and a traced
`optimizer.apply`; ``--driver=loop`` makes it one `tf.function` of
`subclips.subclip_loss_and_grads` (a `tf.while_loop` over the sub-clips) plus
`optimizer.apply`. The peak is the larger of a psutil RSS sample taken every 5 ms
and the kernel's ru_maxrss; the table shows it and its growth over the baseline
(graph tracing included); "+MB steady" is the
peak sampled during the timed steps only, over the same baseline (the RSS
stays high where the allocator keeps freed memory). "step tensors" is
TensorFlow's own peak of live tensor bytes during the timed steps, less the
bytes live before them (weights, optimizer slots, the input): the memory of the
step itself. The "whole clip" row is the usual `model(video, training=True)` tape
(BatchNorm in training mode), for comparison with n=1 (frozen BatchNorm).
"""
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("frames", 64, "Frames per clip.")
flags.DEFINE_integer("size", 172, "Frame height and width.")
flags.DEFINE_integer("batch", 1, "Clips per step.")
flags.DEFINE_integer("steps", 3, "Timed steps after the warm-up step.")
flags.DEFINE_list("subclips", ["1", "2", "4", "8"], "Numbers of sub-clips to measure.")
flags.DEFINE_bool("eager", False, "Run the step eagerly instead of as a tf.function.")
flags.DEFINE_bool("whole_clip", True, "Also measure the standard whole-clip training step.")
flags.DEFINE_enum("driver", "pieces", ["pieces", "loop"],
                  "Sub-clip rows: 'pieces' = the trainer's SubclipGradients (sub-clips driven "
                  "from Python, two traced pieces, then a traced update); 'loop' = "
                  "subclip_loss_and_grads inside one tf.function (a tf.while_loop).")
flags.DEFINE_integer("worker", None, "Internal: measure one setting (0 = whole clip) and "
                     "print one JSON line.")

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _traced_step(model, optimizer, loss_fn, num_subclips):
    """One tf.function: the whole-clip tape (num_subclips == 0) or the sub-clip while loop."""
    import tensorflow as tf

    from movinet_tf.training import subclips

    @tf.function
    def train_step(video, labels):
        variables = model.trainable_variables
        if num_subclips == 0:
            with tf.GradientTape() as tape:
                loss = loss_fn(labels, model(video, training=True))
            grads = tape.gradient(loss, variables)
        else:
            loss, _, grads = subclips.subclip_loss_and_grads(
                model, video, labels, loss_fn, num_subclips, training=True)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return loss

    return train_step


def _measure(num_subclips):
    """Runs in the subprocess: builds, trains a few steps, prints one JSON line."""
    import resource
    import threading
    import time

    import keras
    import numpy as np
    import psutil
    import tensorflow as tf

    import movinet_tf
    from movinet_tf.training import subclips

    process = psutil.Process()
    tf.config.run_functions_eagerly(FLAGS.eager)

    def rss_mb():
        return process.memory_info().rss / 2**20

    model = movinet_tf.build_model("a0", stream=True, num_classes=600,
                                   input_shape=(None, FLAGS.size, FLAGS.size, 3))
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    video = tf.constant(rng.uniform(0, 1, (FLAGS.batch, FLAGS.frames, FLAGS.size, FLAGS.size, 3))
                        .astype(np.float32))
    labels = tf.constant(rng.integers(0, 600, FLAGS.batch).astype(np.int32))

    def loss_fn(y, logits):
        return tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))

    # n = 1 is one tf.function for both drivers (the same baseline).
    if num_subclips > 1 and FLAGS.driver == "pieces":
        pieces = subclips.SubclipGradients(model, loss_fn, num_subclips, training=True)
        apply = tf.function(lambda grads: optimizer.apply(grads, model.trainable_variables))

        def train_step(video, labels):
            loss, _, grads = pieces(video, labels)
            apply(grads)
            return loss
    else:
        train_step = _traced_step(model, optimizer, loss_fn, num_subclips)

    baseline = rss_mb()
    peak = [baseline]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.005):
            peak[0] = max(peak[0], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    float(train_step(video, labels))
    warmup = time.perf_counter() - start
    # TF's own count of live tensor bytes on the CPU, reset after the warm-up:
    # the step's tensors alone, without the graph tracing that RSS also sees.
    tf.config.experimental.reset_memory_stats("CPU:0")
    resident = tf.config.experimental.get_memory_info("CPU:0")["current"] / 2**20
    first_step_peak, peak[0] = peak[0], rss_mb()
    times = []
    for _ in range(FLAGS.steps):
        start = time.perf_counter()
        float(train_step(video, labels))
        times.append(time.perf_counter() - start)
    stop.set()
    sampler.join()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux.
    tensor_peak = tf.config.experimental.get_memory_info("CPU:0")["peak"] / 2**20
    print(json.dumps({"baseline_mb": baseline, "peak_mb": max(first_step_peak, peak[0], maxrss),
                      "steady_peak_mb": peak[0],
                      "step_tensor_mb": tensor_peak - resident,
                      "warmup_s": warmup, "step_s": float(np.median(times))}))


def _run_worker(num_subclips):
    env = dict(os.environ)
    env["PYTHONPATH"] = _REPO + os.pathsep + env.get("PYTHONPATH", "")
    argv = [sys.executable, os.path.abspath(__file__), f"--worker={num_subclips}",
            f"--frames={FLAGS.frames}", f"--size={FLAGS.size}", f"--batch={FLAGS.batch}",
            f"--steps={FLAGS.steps}", f"--eager={FLAGS.eager}", f"--driver={FLAGS.driver}"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"worker for n={num_subclips} failed ({result.returncode}):\n"
                           f"{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv):
    del argv
    if FLAGS.worker is not None:
        _measure(FLAGS.worker)
        return
    settings = [int(n) for n in FLAGS.subclips]
    if any(n < 1 or n > FLAGS.frames for n in settings):
        raise ValueError(f"--subclips must be between 1 and --frames={FLAGS.frames}, "
                         f"got {settings}.")
    if FLAGS.whole_clip:
        settings = [0] + settings
    print(f"A0-stream training, {FLAGS.batch}x{FLAGS.frames}x{FLAGS.size}x{FLAGS.size}, "
          f"{FLAGS.steps} timed steps, {'eager' if FLAGS.eager else 'tf.function'}, "
          f"sub-clips driven by {FLAGS.driver!r}; peak RSS per fresh subprocess")
    header = (f"{'setting':<12}{'frames/sub-clip':>16}{'RSS peak MB':>13}{'+MB':>7}"
              f"{'vs n=1':>8}{'+MB steady':>12}{'step tensors MB':>17}{'vs n=1':>8}"
              f"{'step s':>8}")
    print(header)
    print("-" * len(header))
    growth_n1 = tensors_n1 = None
    for n in settings:
        result = _run_worker(n)
        growth = result["peak_mb"] - result["baseline_mb"]
        tensors = result["step_tensor_mb"]
        if n == 1:
            growth_n1, tensors_n1 = growth, tensors
        name = "whole clip" if n == 0 else f"n={n}"
        per_subclip = FLAGS.frames if n == 0 else f"{FLAGS.frames / n:g}"
        ratio = f"{growth / growth_n1:.2f}" if growth_n1 and n > 0 else "-"
        tensor_ratio = f"{tensors / tensors_n1:.2f}" if tensors_n1 and n > 0 else "-"
        steady = result["steady_peak_mb"] - result["baseline_mb"]
        print(f"{name:<12}{per_subclip:>16}{result['peak_mb']:>13.0f}{growth:>7.0f}{ratio:>8}"
              f"{steady:>12.0f}{tensors:>17.0f}{tensor_ratio:>8}{result['step_s']:>8.2f}",
              flush=True)


if __name__ == "__main__":
    app.run(main)
