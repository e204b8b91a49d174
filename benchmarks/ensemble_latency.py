"""Per-frame latency of a 2-member temporal-ensemble TFLite file against one member's file.

    python benchmarks/ensemble_latency.py                  # A0-Stream members at 172x172
    python benchmarks/ensemble_latency.py --image_size 56 --runs 300

Both files are exported by `export_tflite` (float32, random weights: latency
does not depend on them) and timed round-robin on the LiteRT CPU interpreter
(XNNPACK), one frame per call through the signature runner, states fed back.
The ensemble file runs one member per frame behind an IF op, so its per-frame
cost should be one member's; the table shows how close it comes.
"""
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_id", "a0", "Architecture of both members.")
flags.DEFINE_integer("image_size", 172, "Frame side.")
flags.DEFINE_integer("runs", 200, "Timed calls per model and thread count.")
flags.DEFINE_integer("block", 10, "Consecutive calls per model in the round-robin.")


def _time(streamers, frame, runs, block):
    for streamer in streamers.values():
        for _ in range(10):
            streamer.step(frame)
    times = {label: [] for label in streamers}
    while min(len(t) for t in times.values()) < runs:
        for label, streamer in streamers.items():
            for _ in range(block):
                start = time.perf_counter()
                streamer.step(frame)
                times[label].append(time.perf_counter() - start)
    return {label: 1000.0 * float(np.median(t)) for label, t in times.items()}


def main(argv):
    del argv
    import movinet_tf
    from movinet_tf.ensemble import TemporalEnsemble
    from movinet_tf.export_lib import TFLiteStreamer, export_tflite, op_counts
    size = FLAGS.image_size
    members = [movinet_tf.build_model(FLAGS.model_id, stream=True, num_classes=600)
               for _ in range(2)]
    ensemble = TemporalEnsemble(members)
    work = tempfile.mkdtemp(prefix="ensemble_latency_")
    print(f"exporting {FLAGS.model_id}-stream and a 2-member ensemble at {size}x{size} ...",
          flush=True)
    paths = {"one member": export_tflite(members[0], os.path.join(work, "member.tflite"),
                                         image_size=size).model_path,
             "ensemble of 2": export_tflite(ensemble, os.path.join(work, "ensemble.tflite"),
                                            image_size=size).model_path}
    frame = np.random.default_rng(0).uniform(0, 1, (size, size, 3)).astype(np.float32)
    print(f"\n{FLAGS.model_id}-stream, {size}x{size}, median ms per frame over {FLAGS.runs} "
          "calls (LiteRT, XNNPACK)")
    print(f"{'model':<16} {'1 thread':>9} {'2 threads':>10} {'MB':>7} {'ops':>5} {'IF':>3}")
    results = {}
    for threads in (1, 2):
        streamers = {label: TFLiteStreamer(path, num_threads=threads)
                     for label, path in paths.items()}
        results[threads] = _time(streamers, frame, FLAGS.runs, FLAGS.block)
    for label, path in paths.items():
        counts = op_counts(path)
        print(f"{label:<16} {results[1][label]:>9.3f} {results[2][label]:>10.3f} "
              f"{os.path.getsize(path) / 1e6:>7.2f} {sum(counts.values()):>5} "
              f"{counts.get('IF', 0):>3}")
    for threads in (1, 2):
        ratio = results[threads]["ensemble of 2"] / results[threads]["one member"]
        print(f"ensemble / one member at {threads} thread(s): {ratio:.2f}x")
    print(f"\nmodels in {work}")


if __name__ == "__main__":
    sys.exit(app.run(main))
