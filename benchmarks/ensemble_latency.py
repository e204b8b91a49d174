"""Per-frame latency of a 2-member temporal-ensemble TFLite file against one member's file.

    python benchmarks/ensemble_latency.py                  # A0-Stream members at 172x172
    python benchmarks/ensemble_latency.py --image_size 56 --runs 300
    python benchmarks/ensemble_latency.py --quantize int8   # every file int8

Both files are exported by `export_tflite` (float32, or ``--quantize``; random
weights: latency does not depend on them; int8 is calibrated on the builtin
synthetic clips) and timed round-robin on the LiteRT CPU interpreter
(XNNPACK), one frame per call through the signature runner, states fed back.
The ensemble file is run two ways:

* ``serving_default``: one call per frame with every state; one member runs
  behind an IF op, the other's states pass through (copied in and out);
* ``frame_mod_<t mod N>`` (the manifest's ``frame_signatures``): frame t calls
  the signature of member t mod N, which takes and returns only the states it
  needs, with no control flow. Its per-frame cost should be one member's.

A control row runs the two members' own files (one interpreter each), frame t
on member t mod 2: the same arithmetic and the same two weight sets, without
the ensemble file. What it costs above one member is the price of alternating
between two sets of weights (caches), not of the ensemble graph.
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
flags.DEFINE_enum("quantize", "none", ["none", "float16", "dynamic", "int8"],
                  "Export mode of every file (export_tflite's quantize).")


class _FrameSignatures:
    """Runs an ensemble file frame by frame through its ``frame_signatures``."""

    def __init__(self, path, num_threads):
        import json
        from ai_edge_litert.interpreter import Interpreter
        from movinet_tf.export_lib import tflite_model
        with open(tflite_model.manifest_path_for(path)) as f:
            entries = json.load(f)["frame_signatures"]
        interpreter = Interpreter(model_path=path, num_threads=num_threads)
        self.runners = [interpreter.get_signature_runner(e["signature"]) for e in entries]
        self.inputs = [e["input_states"] for e in entries]
        self.states = {}
        for runner in self.runners:
            self.states.update(tflite_model.zero_states(runner.get_input_details()))
        self.image_shape = self.runners[0].get_input_details()["image"]["shape"]
        self.t = 0

    def step(self, frame):
        index = self.t % len(self.runners)
        outputs = self.runners[index](image=frame.reshape(self.image_shape),
                                      **{n: self.states[n] for n in self.inputs[index]})
        logits = outputs.pop("logits")
        self.states.update(outputs)
        self.t += 1
        return logits


class _Alternating:
    """Frame t on streamer t mod N: separate member files, taken in turn."""

    def __init__(self, streamers):
        self.streamers = streamers
        self.t = 0

    def step(self, frame):
        logits = self.streamers[self.t % len(self.streamers)].step(frame)
        self.t += 1
        return logits


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
    print(f"exporting {FLAGS.model_id}-stream and a 2-member ensemble at {size}x{size} "
          f"({FLAGS.quantize}) ...", flush=True)

    def export(model, name):
        return export_tflite(model, os.path.join(work, name), image_size=size,
                             quantize=FLAGS.quantize).model_path

    paths = {"one member": export(members[0], "member.tflite"),
             "member files, alternating": export(members[1], "member1.tflite"),
             "ensemble of 2": export(ensemble, "ensemble.tflite")}
    frame = np.random.default_rng(0).uniform(0, 1, (size, size, 3)).astype(np.float32)
    print(f"\n{FLAGS.model_id}-stream, {size}x{size}, {FLAGS.quantize}, median ms per frame "
          f"over {FLAGS.runs} calls (LiteRT, XNNPACK)")
    print(f"{'model':<28} {'1 thread':>9} {'2 threads':>10} {'MB':>7} {'ops':>5} {'IF':>3}")
    results = {}
    paths["ensemble, frame_mod_<i>"] = paths["ensemble of 2"]
    for threads in (1, 2):
        streamers = {label: TFLiteStreamer(path, num_threads=threads)
                     for label, path in paths.items()
                     if label in ("one member", "ensemble of 2")}
        streamers["member files, alternating"] = _Alternating(
            [TFLiteStreamer(paths["one member"], num_threads=threads),
             TFLiteStreamer(paths["member files, alternating"], num_threads=threads)])
        streamers["ensemble, frame_mod_<i>"] = _FrameSignatures(paths["ensemble of 2"], threads)
        results[threads] = _time(streamers, frame, FLAGS.runs, FLAGS.block)
    for label, path in paths.items():
        counts = op_counts(path)
        print(f"{label:<28} {results[1][label]:>9.3f} {results[2][label]:>10.3f} "
              f"{os.path.getsize(path) / 1e6:>7.2f} {sum(counts.values()):>5} "
              f"{counts.get('IF', 0):>3}")
    for threads in (1, 2):
        for label in ("ensemble of 2", "ensemble, frame_mod_<i>", "member files, alternating"):
            ratio = results[threads][label] / results[threads]["one member"]
            print(f"{label} / one member at {threads} thread(s): {ratio:.2f}x")
    print(f"\nmodels in {work}")


if __name__ == "__main__":
    sys.exit(app.run(main))
