"""Constants and helpers shared by the Android demo tests (no fixtures here)."""
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

from helpers import stream_per_frame

REPO = pathlib.Path(__file__).resolve().parents[2]
ANDROID_DEMO = REPO / "android_demo"
HARNESS_SOURCE = pathlib.Path(__file__).resolve().parent / "java" / "CoreHarness.java"
DRIVER_SOURCE = pathlib.Path(__file__).resolve().parent / "arm64" / "bridge_driver.c"
APK_TOOLS = ["aapt", "zipalign", "apksigner", "clang", "ld.lld", "dexdump", "keytool"]

def _java_home():
    """The JDK that `javac` on PATH belongs to (for jni.h)."""
    javac = shutil.which("javac")
    if javac is None:
        return pathlib.Path("/nonexistent")
    return pathlib.Path(os.path.realpath(javac)).parents[1]


JAVA_HOME = _java_home()

# The test model: A0 stream at the app's input size, random weights.
IMAGE_SIZE = 172
NUM_CLASSES = 600
# bikes.mp4 is 25 fps; every 5th frame feeds the model at the app's default 5 fps.
CLIP_FPS = 25.0
CLIP_FRAMES = 150
CLIP_STRIDE = 5
# The small models of the APK, arm64 and uint8 tests (seconds under qemu): A0 stream at 32 px.
# Their input contracts name different frame rates, so a test sees which one is followed.
SMALL_SIZE = 32
SMALL_CLASSES = 10
SMALL_FRAME_RATE = 12.5
UINT8_FRAME_RATE = 5.0


def cache_dir():
    """Same rule as android_demo/fetch_deps.sh."""
    root = os.environ.get("MOVINET_CACHE")
    return pathlib.Path(root) / "android" if root else ANDROID_DEMO / ".cache"


def missing(what):
    """Skips (developer machine) or fails (CI) with the command that fixes it."""
    message = (f"{what}; run `bash android_demo/install_build_tools.sh` (apt tools + "
               f"android_demo/fetch_deps.sh into {cache_dir()})")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def run(cmd, **kwargs):
    """Runs a command, failing the test with its output when it exits non-zero."""
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(str(c) for c in cmd)} exited {result.returncode}\n"
                    f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}")
    return result


def key_values(stdout):
    """Parses the harness's "key=value" lines."""
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


def quantize_frames(frames, scale, zero_point, dtype=np.uint8):
    """[0, 1] float32 frames -> the 8-bit image tensor, by the formula the app uses
    (Quantization.quantize: float32 floor(x / scale + 0.5) + zero point, clamped)."""
    info = np.iinfo(dtype)
    q = np.floor(frames.astype(np.float32) / np.float32(scale) + np.float32(0.5)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def litert_stream(model_path, frames, carry_states=True, num_threads=2):
    """Python LiteRT (x86_64, the reference): streams image tensors (already in the model's
    image dtype, [T, H, W, 3]) carrying states by name, as the app does: zero states are real
    zeros (the zero point of a quantized state), and a state whose output quantization differs
    from its input's is re-encoded (float32 arithmetic, round half up). Returns the logits
    [T, num_classes] as float32 (dequantized for an 8-bit model)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(model_path),
                         num_threads=num_threads).get_signature_runner("serving_default")
    inputs, outputs = runner.get_input_details(), runner.get_output_details()

    def zero(detail):
        scale, zero_point = detail["quantization"]
        return np.full(detail["shape"], zero_point if scale else 0, detail["dtype"])

    zeros = {name: zero(d) for name, d in inputs.items() if name != "image"}
    scale, zero_point = outputs["logits"]["quantization"]

    def step(frame, states):
        result = dict(runner(image=frame.reshape(inputs["image"]["shape"]), **states))
        raw = result.pop("logits")[0]
        logits = (np.float32(scale) * (raw.astype(np.float32) - np.float32(zero_point))
                  if scale else raw)
        if not carry_states:
            return logits, zeros
        for name, value in result.items():
            in_q, out_q = inputs[name]["quantization"], outputs[name]["quantization"]
            if in_q[0] and tuple(in_q) != tuple(out_q):
                real = np.float32(out_q[0]) * (value.astype(np.float32) - np.float32(out_q[1]))
                info = np.iinfo(value.dtype)
                value = np.clip(np.floor(real / np.float32(in_q[0]) + np.float32(0.5))
                                + in_q[1], info.min, info.max).astype(value.dtype)
            result[name] = value
        return logits, result

    return stream_per_frame(step, frames, zeros)[0]


def logits_step(model_path, manifest):
    """The size of one quantization step of a quantized model's logits.

    uint8/int8 logits: their own scale. Float logits of an int8 model come out of a
    DEQUANTIZE op; the step is the scale of the int8 tensor it reads (read from the
    interpreter, not from the exporter).
    """
    from ai_edge_litert.interpreter import Interpreter

    (logits,) = [o for o in manifest["outputs"] if o["name"] == "logits"]
    if logits["quantization"]:
        return logits["quantization"]["scale"]
    interpreter = Interpreter(model_path=str(model_path))
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    for op in interpreter._get_ops_details():
        if logits["index"] in list(op["outputs"]):
            assert op["op_name"] == "DEQUANTIZE", f"logits come from {op['op_name']}"
            scale, _ = details[int(op["inputs"][0])]["quantization"]
            assert scale > 0
            return float(scale)
    raise AssertionError(f"no op writes the logits tensor {logits['index']}")
