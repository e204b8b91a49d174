"""Peak training memory and step time of A0-stream trained in n sub-clips.

    python benchmarks/train_memory.py                      # 64x172x172, batch 1, n = 1 2 4 8
    python benchmarks/train_memory.py --frames=32 --steps=2 --subclips=1,4
    python benchmarks/train_memory.py --time_drivers=4 --steps=16   # step time, paired

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

Step times from separate processes drift with the machine (on the 2-core VM by
10-20% over a minute), more than the drivers differ. ``--time_drivers=N`` measures
only time: one subprocess runs both drivers at n = N on one model, alternating step
by step, and prints each one's median step and CPU time and the per-round ratio
pieces / loop with its standard error.
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
flags.DEFINE_integer("time_drivers", None,
                     "Instead of the memory table: time the two sub-clip drivers at this n, "
                     "alternating step by step in one process for --steps rounds (each "
                     "round starts with the other driver), so that drift of the machine's "
                     "speed hits both alike; prints medians and the per-round ratio.")
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


def _setup():
    """(model, optimizer, video, labels, loss_fn) of a worker: A0-stream, SGD, a random clip."""
    import keras
    import numpy as np
    import tensorflow as tf

    import movinet_tf

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

    return model, optimizer, video, labels, loss_fn


def _pieces_step(model, optimizer, loss_fn, num_subclips):
    """The trainer's driver: `SubclipGradients` called eagerly, then a traced update."""
    import tensorflow as tf

    from movinet_tf.training import subclips

    pieces = subclips.SubclipGradients(model, loss_fn, num_subclips, training=True)
    apply = tf.function(lambda grads: optimizer.apply(grads, model.trainable_variables))

    def train_step(video, labels):
        loss, _, grads = pieces(video, labels)
        apply(grads)
        return loss

    return train_step


def _time_drivers(num_subclips):
    """Runs in the subprocess: both drivers on one model, alternating; one JSON line."""
    import resource
    import time

    import numpy as np

    model, optimizer, video, labels, loss_fn = _setup()

    steps = {"pieces": _pieces_step(model, optimizer, loss_fn, num_subclips),
             "loop": _traced_step(model, optimizer, loss_fn, num_subclips)}
    for step in steps.values():  # tracing and a warm step each
        for _ in range(2):
            float(step(video, labels))

    def cpu_s():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    wall = {name: [] for name in steps}
    cpu = {name: [] for name in steps}
    for round_index in range(FLAGS.steps):
        order = list(steps) if round_index % 2 == 0 else list(steps)[::-1]
        for name in order:
            start, start_cpu = time.perf_counter(), cpu_s()
            float(steps[name](video, labels))
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(cpu_s() - start_cpu)
    ratios = np.array(wall["pieces"]) / np.array(wall["loop"])
    print(json.dumps({"wall": wall, "cpu": cpu, "ratio_median": float(np.median(ratios)),
                      "ratio_mean": float(ratios.mean()),
                      "ratio_se": float(ratios.std(ddof=1) / np.sqrt(len(ratios)))
                      if len(ratios) > 1 else float("nan")}))


def _print_driver_times(result, num_subclips):
    import numpy as np

    print(f"A0-stream training, {FLAGS.batch}x{FLAGS.frames}x{FLAGS.size}x{FLAGS.size}, "
          f"n={num_subclips}: the two drivers alternating in one process, {FLAGS.steps} rounds")
    header = f"{'driver':<10}{'median step s':>15}{'min s':>8}{'median CPU s':>14}"
    print(header)
    print("-" * len(header))
    for name in ("pieces", "loop"):
        print(f"{name:<10}{np.median(result['wall'][name]):>15.3f}"
              f"{min(result['wall'][name]):>8.3f}{np.median(result['cpu'][name]):>14.3f}")
    print(f"pieces / loop per round: median {result['ratio_median']:.3f}, "
          f"mean {result['ratio_mean']:.3f} +- {result['ratio_se']:.3f} (standard error)")


def _measure(num_subclips):
    """Runs in the subprocess: builds, trains a few steps, prints one JSON line."""
    import resource
    import threading
    import time

    import numpy as np
    import psutil
    import tensorflow as tf

    process = psutil.Process()
    tf.config.run_functions_eagerly(FLAGS.eager)

    def rss_mb():
        return process.memory_info().rss / 2**20

    model, optimizer, video, labels, loss_fn = _setup()

    # n = 1 is one tf.function for both drivers (the same baseline).
    if num_subclips > 1 and FLAGS.driver == "pieces":
        train_step = _pieces_step(model, optimizer, loss_fn, num_subclips)
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


def _run_worker(num_subclips, time_drivers=False):
    env = dict(os.environ)
    env["PYTHONPATH"] = _REPO + os.pathsep + env.get("PYTHONPATH", "")
    argv = [sys.executable, os.path.abspath(__file__), f"--worker={num_subclips}",
            f"--frames={FLAGS.frames}", f"--size={FLAGS.size}", f"--batch={FLAGS.batch}",
            f"--steps={FLAGS.steps}", f"--eager={FLAGS.eager}", f"--driver={FLAGS.driver}"]
    if time_drivers:
        argv.append(f"--time_drivers={num_subclips}")
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"worker for n={num_subclips} failed ({result.returncode}):\n"
                           f"{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv):
    del argv
    if FLAGS.worker is not None:
        if FLAGS.time_drivers is not None:
            _time_drivers(FLAGS.worker)
        else:
            _measure(FLAGS.worker)
        return
    if FLAGS.time_drivers is not None:
        if not 2 <= FLAGS.time_drivers <= FLAGS.frames:
            raise ValueError(f"--time_drivers must be between 2 and --frames={FLAGS.frames}, "
                             f"got {FLAGS.time_drivers}.")
        _print_driver_times(_run_worker(FLAGS.time_drivers, time_drivers=True),
                            FLAGS.time_drivers)
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
