"""Per-frame latency of A0-stream TFLite on the LiteRT CPU interpreter (XNNPACK): ours vs official.

    python benchmarks/tflite_latency.py                 # ~5 minutes on 2 cores
    python benchmarks/tflite_latency.py --runs 100 --skip_official

Ours: `export_tflite` of A0-stream (600 classes, random weights: latency does
not depend on them) at 172x172, one frame per call, in float32, float16,
dynamic-range and int8 (plus float32 with --gpu_compatible_states). The
official implementation (tf-models-official) is exported **in the same run** by
its own recipe, in a subprocess with TF_USE_LEGACY_KERAS=1: its
export_saved_model tool with --causal --conv_type 2plus1d --se_type 2plus3d
--activation hard_swish --gating_activation hard_sigmoid --batch_size 1
--num_frames 1 --image_size 172 --bundle_input_init_states_fn=False, then a plain
TFLiteConverter (float32), and its quantize recipe for int8 (DEFAULT
optimizations, a representative dataset of {image, **states} streamed through
the float SavedModel, TFLITE_BUILTINS_INT8, int8 input/output). Its
quantize_movinet.py imports tensorflow_hub, which is not installed, so the same
converter settings are applied here directly.

Timing: each call is the full signature-runner call an app makes (set image and
43 states, invoke, read logits and 43 states); the models are timed round-robin
in blocks so that load from other processes hits all of them alike. Median over
`--runs` calls per model and thread count.
"""
import collections
import os
import subprocess
import sys
import tempfile
import textwrap
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

import _peer  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("image_size", 172, "Frame side.")
flags.DEFINE_integer("runs", 300, "Timed calls per model and thread count.")
flags.DEFINE_integer("block", 10, "Consecutive calls per model in the round-robin.")
flags.DEFINE_bool("skip_official", False, "Only time our models.")
flags.DEFINE_string("work_dir", None, "Where to write the models (default: a temp dir).")

_OFFICIAL_EXPORT = textwrap.dedent("""
    import json, os, subprocess, sys
    import numpy as np
    out, size = sys.argv[1], int(sys.argv[2])
    saved_model = os.path.join(out, "official_saved_model")
    subprocess.run([sys.executable, "-m", "official.projects.movinet.tools.export_saved_model",
                    f"--export_path={saved_model}", "--model_id=a0", "--causal=True",
                    "--conv_type=2plus1d", "--se_type=2plus3d", "--activation=hard_swish",
                    "--gating_activation=hard_sigmoid", "--batch_size=1", "--num_frames=1",
                    f"--image_size={size}", "--num_classes=600",
                    "--bundle_input_init_states_fn=False"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import tensorflow as tf
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    with open(os.path.join(out, "official_float32.tflite"), "wb") as f:
        f.write(converter.convert())
    serve = tf.saved_model.load(saved_model).signatures["serving_default"]
    specs = serve.structured_input_signature[1]
    zero_states = {k: tf.zeros(v.shape, v.dtype) for k, v in specs.items() if k != "image"}
    rng = np.random.default_rng(0)

    def representative_dataset():
        # The recipe: stream each clip through the float model; yield frame 0 and
        # random later frames with the states the model has there.
        for _ in range(4):
            clip = rng.uniform(0, 1, (1, 8, size, size, 3)).astype(np.float32)
            picks = {0} | set(rng.integers(1, 8, size=2).tolist())
            states = zero_states
            for t in range(8):
                frame = tf.constant(clip[:, t:t + 1])
                if t in picks:
                    yield {"image": frame, **states}
                outputs = dict(serve(image=frame, **states))
                outputs.pop("logits")
                states = outputs

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with open(os.path.join(out, "official_int8.tflite"), "wb") as f:
        f.write(converter.convert())
    print(json.dumps({"ok": True}))
""")


def export_ours(work_dir, image_size):
    """Our A0-stream in every mode; returns dict label -> path."""
    import movinet_tf
    from movinet_tf.export_lib import export_tflite
    model = movinet_tf.build_model("a0", stream=True, num_classes=600)
    paths = {}
    for label, quantize, gpu in (("ours float32", "none", False),
                                 ("ours float32 4-D I/O", "none", True),
                                 ("ours float16", "float16", False),
                                 ("ours dynamic", "dynamic", False),
                                 ("ours int8", "int8", False)):
        path = os.path.join(work_dir, label.replace(" ", "_").replace("/", "") + ".tflite")
        print(f"exporting {label} ...", flush=True)
        export_tflite(model, path, image_size=image_size, quantize=quantize,
                      gpu_compatible_states=gpu)
        paths[label] = path
    return paths


def export_official(work_dir, image_size):
    print("exporting the official A0-stream (float32, int8) in a subprocess ...", flush=True)
    result = subprocess.run([sys.executable, "-c", _OFFICIAL_EXPORT, work_dir, str(image_size)],
                            env=_peer.official_env(),
                            capture_output=True, text=True, timeout=3600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"official export failed:\n{result.stderr[-3000:]}")
    return {"official float32": os.path.join(work_dir, "official_float32.tflite"),
            "official int8": os.path.join(work_dir, "official_int8.tflite")}


class _Runner:
    """One model's signature runner with its states fed back each call."""

    def __init__(self, path, num_threads):
        from ai_edge_litert.interpreter import Interpreter
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner()
        details = self.runner.get_input_details()
        rng = np.random.default_rng(0)
        image = details["image"]
        if np.issubdtype(image["dtype"], np.integer):
            self.image = rng.integers(-128, 127, image["shape"]).astype(image["dtype"])
        else:
            self.image = rng.uniform(0, 1, image["shape"]).astype(image["dtype"])
        self.states = {k: np.zeros(d["shape"], d["dtype"]) for k, d in details.items()
                       if k != "image"}

    def step(self):
        outputs = self.runner(image=self.image, **self.states)
        outputs.pop("logits")
        self.states = outputs


def time_models(paths, num_threads, runs, block):
    """Median ms per call for each model, timed round-robin."""
    runners = {label: _Runner(path, num_threads) for label, path in paths.items()}
    for runner in runners.values():
        for _ in range(10):
            runner.step()
    times = collections.defaultdict(list)
    while not times or min(len(t) for t in times.values()) < runs:
        for label, runner in runners.items():
            for _ in range(block):
                start = time.perf_counter()
                runner.step()
                times[label].append(time.perf_counter() - start)
    return {label: 1000.0 * float(np.median(t)) for label, t in times.items()}


def main(argv):
    del argv
    from movinet_tf.export_lib import op_counts
    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="tflite_latency_")
    os.makedirs(work_dir, exist_ok=True)
    paths = export_ours(work_dir, FLAGS.image_size)
    if not FLAGS.skip_official:
        if not _peer.have_reference():
            print(f"official: skipped, {_peer.INSTALL_HINT}")
        else:
            paths.update(export_official(work_dir, FLAGS.image_size))
    latency = {threads: time_models(paths, threads, FLAGS.runs, FLAGS.block)
               for threads in (1, 2)}
    size = FLAGS.image_size
    print(f"\nA0-stream, 1 frame of {size}x{size} per call, LiteRT CPU (XNNPACK), median ms "
          f"over {FLAGS.runs} calls (signature runner: image + states in, logits + states out)")
    header = f"{'model':<24} {'1 thread':>9} {'2 threads':>10} {'size MB':>8} {'ops':>5}"
    print(header)
    print("-" * len(header))
    counts = {label: op_counts(path) for label, path in paths.items()}
    for label, path in paths.items():
        print(f"{label:<24} {latency[1][label]:>9.3f} {latency[2][label]:>10.3f} "
              f"{os.path.getsize(path) / 1e6:>8.2f} {sum(counts[label].values()):>5}")
    pairs = [("ours float32", "official float32"), ("ours float16", "official float32"),
             ("ours dynamic", "official float32"), ("ours int8", "official int8")]
    for ours, official in pairs:
        if ours in paths and official in paths:
            print(f"{official} / {ours}: " + ", ".join(
                f"{latency[t][official] / latency[t][ours]:.2f}x at {t} thread{'s' * (t > 1)}"
                for t in (1, 2)))
    print("\nOps per type")
    op_names = sorted({name for c in counts.values() for name in c},
                      key=lambda n: -max(c.get(n, 0) for c in counts.values()))
    labels = list(paths)
    short = [label.replace("official", "off.").replace("float", "f").replace(" 4-D I/O", " 4D")
             for label in labels]
    print(f"{'op':<20}" + "".join(f"{s:>14}" for s in short))
    for name in op_names:
        print(f"{name:<20}" + "".join(f"{counts[label].get(name, 0):>14}" for label in labels))
    print(f"\nmodels in {work_dir}")


if __name__ == "__main__":
    app.run(main)
