"""Per-frame latency of A0-stream TFLite on the LiteRT CPU interpreter (XNNPACK): ours vs official.

    python benchmarks/tflite_latency.py                 # ~5 minutes on 2 cores
    python benchmarks/tflite_latency.py --runs 100 --skip_official

The official implementation (tf-models-official) is exported **in the same run**
by its own recipe, in a subprocess with TF_USE_LEGACY_KERAS=1: its
export_saved_model tool with --causal --conv_type 2plus1d --se_type 2plus3d
--activation hard_swish --gating_activation hard_sigmoid --batch_size 1
--num_frames 1 --image_size 172 --bundle_input_init_states_fn=False, then a plain
TFLiteConverter (float32), and its quantize recipe for int8 (DEFAULT
optimizations, a representative dataset of {image, **states} streamed through
the float SavedModel, TFLITE_BUILTINS_INT8, int8 input/output). Its
quantize_movinet.py imports tensorflow_hub, which is not installed, so the same
converter settings are applied here directly.

Ours: `export_tflite` of A0-stream (600 classes) at 172x172, one frame per call,
in float32, float16, dynamic-range and int8 (plus float32 with
--gpu_compatible_states). It loads the official model's weights from that
SavedModel (random, untrained weights; latency does not depend on them), and
both int8 models are calibrated on the same 8 builtin clips. So the int8
agreement table at the end compares the two ways of quantizing one network:
the official graph keeps a running *sum* in its pool states, ours a running mean.

float16 arithmetic: XNNPACK takes a float model's `fp16accfp16` metadata (our
`float16_arithmetic` export) as a hint only where the CPU has native float16
arithmetic (ARMv8.2+), not on x86, even with AVX512-FP16. So the "fp16 forced"
rows run through LiteRT's CompiledModel API with XNNPACK's FORCE_FP16 flag,
and the "CM" rows time the same API without it: compare those with each other.

Timing: each plain row's call is the full signature-runner call (set image and
43 states, invoke, read logits and 43 states). That runner resizes and
reallocates every input and copies every output on each call, so the "in place"
rows time `TFLiteStreamer.advance` instead: tensors allocated once, each state
copied from its output buffer into the next call's input buffer (what the stream
CLI and the NAS latency cost run). The models are timed
round-robin in blocks so that load from other processes hits all of them alike.
Median over `--runs` calls per model and thread count.
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
    out, size, calibration_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    calibration = np.load(calibration_path)  # [N, T, H, W, 3], the clips ours calibrates on
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
        for clip in calibration:
            clip = clip[None]
            frames = clip.shape[1]
            picks = {0} | set(rng.integers(1, frames, size=2).tolist())
            states = zero_states
            for t in range(frames):
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


def export_ours(work_dir, image_size, calibration, official_saved_model=None):
    """Our A0-stream in every mode; returns dict label -> path.

    With `official_saved_model`, ours carries the official model's weights (read
    by `load_official_checkpoint`), so both are quantized from the same network.
    """
    import movinet_tf
    from movinet_tf.export_lib import export_tflite
    model = movinet_tf.build_model("a0", stream=True, num_classes=600)
    if official_saved_model:
        model(np.zeros([1, 1, image_size, image_size, 3], np.float32))
        movinet_tf.load_official_checkpoint(model, official_saved_model)
        print("ours: loaded the official model's weights", flush=True)
    paths = {}
    for label, quantize, gpu in (("ours float32", "none", False),
                                 ("ours float32 4-D I/O", "none", True),
                                 ("ours float16", "float16", False),
                                 ("ours float16 arith", "float16_arithmetic", False),
                                 ("ours dynamic", "dynamic", False),
                                 ("ours int8", "int8", False),
                                 ("ours int8 uint8-in", "int8_uint8_input", False)):
        path = os.path.join(work_dir, label.replace(" ", "_").replace("/", "") + ".tflite")
        print(f"exporting {label} ...", flush=True)
        export_tflite(model, path, image_size=image_size, quantize=quantize,
                      gpu_compatible_states=gpu,
                      calibration_videos=(list(calibration) if quantize.startswith("int8")
                                          else None))
        paths[label] = path
    return paths


def export_official(work_dir, image_size, calibration_path):
    print("exporting the official A0-stream (float32, int8) in a subprocess ...", flush=True)
    result = subprocess.run([sys.executable, "-c", _OFFICIAL_EXPORT, work_dir, str(image_size),
                             calibration_path],
                            env=_peer.official_env(),
                            capture_output=True, text=True, timeout=3600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"official export failed:\n{result.stderr[-3000:]}")
    return {"official float32": os.path.join(work_dir, "official_float32.tflite"),
            "official int8": os.path.join(work_dir, "official_int8.tflite")}


# Models also run through LiteRT's CompiledModel API: label -> (model label, XNNPACK float16
# forced). "CM" rows time the same API without forcing, so the API's own cost cancels out.
COMPILED = {"ours f16 arith, fp16 forced": ("ours float16 arith", True),
            "ours float32, CM": ("ours float32", False),
            "official f32, CM": ("official float32", False),
            "official f32, fp16 forced": ("official float32", True)}
# Models also stepped by `TFLiteStreamer`, which binds each signature once and carries the
# states from output to input buffer in place: label -> model label.
IN_PLACE = {"ours float32, in place": "ours float32", "ours int8, in place": "ours int8",
            "official f32, in place": "official float32",
            "official int8, in place": "official int8"}


class _Runner:
    """One model's signature runner with its states fed back each call.

    `kind`: None for the interpreter's signature runner, 'in place' for `TFLiteStreamer`
    (what the stream CLI and the NAS latency cost run), else 'compiled' or 'fp16' for
    `CompiledRunner` without / with XNNPACK float16 forced.
    """

    def __init__(self, path, num_threads, kind=None):
        self.streamer = None
        if kind == "in place":
            from movinet_tf.export_lib import TFLiteStreamer
            self.streamer = TFLiteStreamer(path, num_threads=num_threads)
            self.runner = self.streamer.runner
        elif kind is None:
            from ai_edge_litert.interpreter import Interpreter
            self.runner = Interpreter(model_path=path,
                                      num_threads=num_threads).get_signature_runner()
        else:
            from movinet_tf.export_lib import CompiledRunner
            self.runner = CompiledRunner(path, num_threads, force_fp16=kind == "fp16")
        from movinet_tf.export_lib import zero_states
        details = self.runner.get_input_details()
        rng = np.random.default_rng(0)
        image = details["image"]
        if np.issubdtype(image["dtype"], np.integer):
            info = np.iinfo(image["dtype"])
            self.image = rng.integers(info.min, info.max, image["shape"]).astype(image["dtype"])
        else:
            self.image = rng.uniform(0, 1, image["shape"]).astype(image["dtype"])
        self.states = zero_states(details)

    def step(self):
        if self.streamer is not None:
            self.streamer.advance(self.image)
            return
        outputs = self.runner(image=self.image, **self.states)
        outputs.pop("logits")
        self.states = outputs


def _stream_logits(path, clip, force_fp16=False):
    """Logits [T, classes] of one clip streamed through a .tflite.

    `TFLiteStreamer` handles integer I/O: the image is quantized, an int8 state starts at
    its zero point and goes back in at its input's scale (the official int8 file's pool
    sums come out at a scale up to 7% off the one they go in at; fed back raw, each frame
    would shrink them by that much).
    """
    if not force_fp16:
        from movinet_tf.export_lib import TFLiteStreamer
        return TFLiteStreamer(path, num_threads=1).run(clip)
    from movinet_tf.export_lib import CompiledRunner, zero_states
    runner = CompiledRunner(path, 1, force_fp16=True)
    inputs = runner.get_input_details()
    states = zero_states(inputs)
    logits = []
    for frame in clip:
        result = runner(image=frame.reshape(inputs["image"]["shape"]).astype(np.float32),
                        **states)
        logits.append(np.asarray(result.pop("logits"), np.float32).reshape(-1))
        states = result
    return np.stack(logits)


def int8_agreement(float_path, int8_path, clips, force_fp16=False):
    """Top-1 agreement and logit errors of a reduced-precision model against its float32 twin.

    `force_fp16`: run the second model with XNNPACK's float16 arithmetic forced.
    """
    agree, errors, scale, gaps = [], [], [], []
    for clip in clips:
        reference = _stream_logits(float_path, clip)
        quantized = _stream_logits(int8_path, clip, force_fp16)
        agree.extend(np.argmax(reference, -1) == np.argmax(quantized, -1))
        errors.append(np.abs(reference - quantized))
        scale.append(np.abs(reference).max())
        top2 = np.sort(reference, -1)[:, -2:]
        gaps.append(np.median(top2[:, 1] - top2[:, 0]))
    errors = np.stack(errors)  # [clips, T, classes]
    window = max(1, errors.shape[1] // 4)
    return {"agreement": float(np.mean(agree)), "max_error": float(errors.max()),
            "mean_error": float(errors.mean()), "logit_scale": float(np.max(scale)),
            "early_error": float(errors[:, :window].mean()),
            "late_error": float(errors[:, -window:].mean()), "window": window,
            "top2_gap": float(np.median(gaps))}


def time_models(paths, num_threads, runs, block, kinds):
    """Median ms per call for each model, timed round-robin (`kinds`: label -> runner kind)."""
    runners = {label: _Runner(path, num_threads, kinds.get(label))
               for label, path in paths.items()}
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
    from movinet_tf.export_lib import default_calibration_videos
    size = FLAGS.image_size
    calibration = np.stack(default_calibration_videos(size, num_videos=8, num_frames=16))
    held_out = np.stack(default_calibration_videos(size, num_videos=4, num_frames=48, seed=5000))
    calibration_path = os.path.join(work_dir, "calibration.npy")
    np.save(calibration_path, calibration)
    official = {}
    if not FLAGS.skip_official:
        if not _peer.have_reference():
            print(f"official: skipped, {_peer.INSTALL_HINT}")
        else:
            official = export_official(work_dir, size, calibration_path)
    paths = export_ours(work_dir, size, calibration,
                        os.path.join(work_dir, "official_saved_model") if official else None)
    paths.update(official)
    kinds = {}
    for label, (source, force_fp16) in COMPILED.items():
        if source in paths:
            paths[label] = paths[source]
            kinds[label] = "fp16" if force_fp16 else "compiled"
    for label, source in IN_PLACE.items():
        if source in paths:
            paths[label] = paths[source]
            kinds[label] = "in place"
    latency = {threads: time_models(paths, threads, FLAGS.runs, FLAGS.block, kinds)
               for threads in (1, 2)}
    print(f"\nA0-stream, 1 frame of {size}x{size} per call, LiteRT CPU (XNNPACK), median ms "
          f"over {FLAGS.runs} calls (signature runner: image + states in, logits + states out)")
    header = f"{'model':<27} {'1 thread':>9} {'2 threads':>10} {'size MB':>8} {'ops':>5}"
    print(header)
    print("-" * len(header))
    counts = {label: op_counts(path) for label, path in paths.items()}
    for label, path in paths.items():
        print(f"{label:<27} {latency[1][label]:>9.3f} {latency[2][label]:>10.3f} "
              f"{os.path.getsize(path) / 1e6:>8.2f} {sum(counts[label].values()):>5}")
    pairs = [("ours float32", "official float32"), ("ours float16", "official float32"),
             ("ours dynamic", "official float32"), ("ours int8", "official int8")]
    for ours, official in pairs:
        if ours in paths and official in paths:
            print(f"{official} / {ours}: " + ", ".join(
                f"{latency[t][official] / latency[t][ours]:.2f}x at {t} thread{'s' * (t > 1)}"
                for t in (1, 2)))
    for ours, reference in (("ours float32", "official float32"), ("ours int8", "ours float32"),
                            ("ours int8 uint8-in", "ours float32"),
                            ("ours int8", "official int8"),
                            ("ours float32, CM", "official f32, CM"),
                            ("ours f16 arith, fp16 forced", "official f32, CM"),
                            ("ours f16 arith, fp16 forced", "ours float32, CM"),
                            ("official f32, fp16 forced", "official f32, CM"),
                            ("ours f16 arith, fp16 forced", "official f32, fp16 forced"),
                            ("ours float32, in place", "official f32, in place"),
                            ("ours int8, in place", "ours float32, in place"),
                            ("ours int8, in place", "official int8, in place"),
                            ("ours float32, in place", "ours float32"),
                            ("ours int8, in place", "ours int8")):
        if ours in paths and reference in paths:
            print(f"{ours} / {reference}: " + ", ".join(
                f"{latency[t][ours] / latency[t][reference]:.2f}x at {t} thread{'s' * (t > 1)}"
                for t in (1, 2)))
    for label in ("ours float32", "ours int8", "official float32", "ours float32, in place",
                  "ours int8, in place", "official f32, in place"):
        if label in paths:
            print(f"{label}: 2 threads / 1 thread {latency[2][label] / latency[1][label]:.2f}x")
    print("\nOps per type")
    op_names = sorted({name for c in counts.values() for name in c},
                      key=lambda n: -max(c.get(n, 0) for c in counts.values()))
    labels = [label for label in paths if label not in kinds]
    short = [label.replace("official", "off.").replace("float", "f").replace(" 4-D I/O", " 4D")
             for label in labels]
    print(f"{'op':<20}" + "".join(f"{s:>14}" for s in short))
    for name in op_names:
        print(f"{name:<20}" + "".join(f"{counts[label].get(name, 0):>14}" for label in labels))
    print(f"\nint8 and float16 arithmetic (XNNPACK fp16 forced) against float32 of the same "
          f"implementation, {len(held_out)} held-out clips "
          f"of {held_out.shape[1]} frames (builtin set, not used for calibration)"
          + ("; both carry the official model's weights and the same calibration clips"
             if official else ""))
    rows = {f"{prefix} int8": int8_agreement(paths[f"{prefix} float32"], paths[f"{prefix} int8"],
                                             held_out)
            for prefix in ("ours", "official") if f"{prefix} int8" in paths}
    # float16 arithmetic (forced): against the same file's float32 run.
    rows["ours fp16 arith"] = int8_agreement(paths["ours float32"], paths["ours float16 arith"],
                                             held_out, force_fp16=True)
    if "official float32" in paths:
        rows["official fp16"] = int8_agreement(paths["official float32"],
                                               paths["official float32"], held_out,
                                               force_fp16=True)
    if rows:
        window = next(iter(rows.values()))["window"]
        print(f"{'model':<14} {'top-1 agree':>11} {'max abs err':>12} {'mean abs err':>13} "
              f"{'frames 1-' + str(window):>12} {'last ' + str(window):>8} {'max |logit|':>12} "
              f"{'top1-top2 gap':>14}")
    for prefix, quality in rows.items():
        print(f"{prefix:<14} {quality['agreement']:>11.1%} {quality['max_error']:>12.4f} "
              f"{quality['mean_error']:>13.4f} {quality['early_error']:>12.4f} "
              f"{quality['late_error']:>8.4f} {quality['logit_scale']:>12.3f} "
              f"{quality['top2_gap']:>14.4f}")
    if rows:
        print("(mean abs err per frame window shows whether the error grows along the stream; "
              "with untrained weights the top-1/top-2 logit gap is tiny, so top-1 agreement is "
              "fragile: read the errors)")
    print(f"\nmodels in {work_dir}")


if __name__ == "__main__":
    app.run(main)
