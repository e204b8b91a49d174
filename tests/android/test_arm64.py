"""The code the phone runs, run here: the APK's arm64 JNI bridge and the arm64 TFLite runtime.

`tests/android/arm64/bridge_driver.c`, built for aarch64 Linux, runs under qemu-user. It loads
`lib/arm64-v8a/libtflitejni.so` unpacked from the APK, drives its Java_* entry points through
a fake JNIEnv as StreamingClassifier does, and maps the model from inside the APK at the stored
entry's offset, as the app maps its asset. The bridge calls the arm64 build of the same TFLite C
API (litert-lm-api's aarch64 Linux library, version 2.23.0 like the APK's Android one).

Reference: Python LiteRT on x86_64 (a different binary and instruction set), over the same
frames of a real clip at the rate of the model's input contract, states carried.

What this cannot show: bionic's loader, ART, Camera2 or phone latency (see the README).
"""
import json

import numpy as np
import pytest

from tests.android.support import (CLIP_FPS, SMALL_CLASSES, SMALL_SIZE, key_values,
                                   litert_stream, logits_step, quantize_frames)

pytestmark = pytest.mark.usefixtures("arm64")

FRAMES = 30
# Float32 logits (|logit| ~ 0.5) through arm64 vs x86_64 XNNPACK kernels: different
# instruction sets sum in a different order. Measured max |diff| ~1e-6.
FLOAT_ATOL = 2e-5
# uint8 model: integer kernels agree up to requantization rounding, and a one-step difference
# travels on through the carried states. Stated in steps of the logits' scale; measured 3.
UINT8_STEPS = 6


def _clip_at_contract_rate(bikes_clip, contract):
    """FRAMES frames of bikes.mp4 at the contract's frame rate, eval-preprocessed: [T, H, W, 3]
    float32 in [0, 1]."""
    from movinet_tf.data.preprocess import preprocess_eval_frames
    from movinet_tf.data.video_io import read_video

    stride = CLIP_FPS / contract["frame_rate"]
    assert stride == int(stride), contract
    frames, fps = read_video(bikes_clip, max_frames=FRAMES * int(stride))
    assert fps == pytest.approx(CLIP_FPS)
    picked = np.ascontiguousarray(frames[::int(stride)])
    assert len(picked) == FRAMES
    height, width = contract["image_size"]
    assert height == width == SMALL_SIZE
    return preprocess_eval_frames(picked, height, contract["min_image_size"])


def _run_driver(arm64, apk, frames, tmp_path, threads=2):
    frames_file, logits_file = tmp_path / "frames.bin", tmp_path / "logits.f32"
    np.ascontiguousarray(frames).tofile(frames_file)
    result = arm64("stream", apk["lib"] / "libtflitejni.so", apk["path"], apk["model_offset"],
                   apk["model_length"], frames_file, threads, logits_file)
    info = key_values(result.stdout)
    logits = np.fromfile(logits_file, "<f4").reshape(-1, SMALL_CLASSES)
    return info, logits, result.stderr


@pytest.fixture(scope="module")
def float_run(arm64, apk, bikes_clip, tmp_path_factory):
    frames = _clip_at_contract_rate(bikes_clip, apk["model"]["contract"])
    info, logits, stderr = _run_driver(arm64, apk, frames.astype("<f4"),
                                       tmp_path_factory.mktemp("arm64_float"))
    return {"info": info, "logits": logits, "stderr": stderr, "frames": frames}


@pytest.fixture(scope="module")
def uint8_run(arm64, apk_uint8_clip, bikes_clip, tmp_path_factory):
    contract = apk_uint8_clip["model"]["contract"]
    quant = contract["quantization"]
    frames = quantize_frames(_clip_at_contract_rate(bikes_clip, contract), quant["scale"],
                             quant["zero_point"])
    info, logits, stderr = _run_driver(arm64, apk_uint8_clip, frames,
                                       tmp_path_factory.mktemp("arm64_uint8"))
    return {"info": info, "logits": logits, "stderr": stderr, "frames": frames}


def test_the_apk_bridge_runs_the_mapped_model_on_the_arm64_runtime(float_run, apk):
    info = float_run["info"]
    assert info["model_magic"] == "TFL3"  # the mapped bytes at the entry's offset are the model
    assert apk["model_offset"] % 4 == 0
    assert info["version"] == "2.23.0"
    assert info["signature"] == "serving_default"
    assert info["image_type"] == "1" and info["num_classes"] == str(SMALL_CLASSES)
    assert info["states"] == "43" and info["frames"] == str(FRAMES)
    assert "Created TensorFlow Lite XNNPACK delegate for CPU" in float_run["stderr"]


def test_float_logits_equal_x86_litert_frame_by_frame(float_run, apk):
    reference = litert_stream(apk["model"]["tflite"], float_run["frames"])
    arm = float_run["logits"]
    per_frame = np.abs(arm - reference).max(axis=1)
    assert per_frame.max() <= FLOAT_ATOL, f"per-frame max |diff|: {per_frame}"
    np.testing.assert_array_equal(arm.argmax(axis=1), reference.argmax(axis=1))
    # Not vacuous: the frames move the logits, and the carried states matter.
    assert np.abs(arm[0] - arm[-1]).max() > 100 * FLOAT_ATOL
    stateless = litert_stream(apk["model"]["tflite"], float_run["frames"], carry_states=False)
    assert np.abs(arm[1:] - stateless[1:]).max() > 100 * FLOAT_ATOL


def test_uint8_logits_equal_x86_litert_frame_by_frame(uint8_run, apk_uint8_clip):
    info = uint8_run["info"]
    contract = apk_uint8_clip["model"]["contract"]
    assert info["image_type"] == "3"  # kTfLiteUInt8
    assert float(info["image_scale"]) == pytest.approx(contract["quantization"]["scale"])
    assert int(info["image_zero_point"]) == contract["quantization"]["zero_point"]
    # The bridge re-encodes exactly the states whose input and output quantization differ.
    assert int(info["states_requantized"]) == _states_to_requantize(
        apk_uint8_clip["model"]["manifest"])
    reference = litert_stream(apk_uint8_clip["model"]["tflite"], uint8_run["frames"])
    arm = uint8_run["logits"]
    model = apk_uint8_clip["model"]
    step = logits_step(model["tflite"], json.loads(model["manifest"].read_text()))
    per_frame = np.abs(arm - reference).max(axis=1) / step
    assert per_frame.max() <= UINT8_STEPS, f"per-frame max |diff| in logit steps: {per_frame}"
    np.testing.assert_array_equal(arm.argmax(axis=1), reference.argmax(axis=1))
    # Not vacuous: the frames move the logits by more than twice the tolerance.
    assert np.abs(arm[0] - arm[-1]).max() > 2 * UINT8_STEPS * step


def _states_to_requantize(manifest_path):
    manifest = json.loads(manifest_path.read_text())
    inputs = {t["index"]: t for t in manifest["inputs"]}
    outputs = {t["index"]: t for t in manifest["outputs"]}
    return sum(inputs[s["input_index"]]["quantization"] != outputs[s["output_index"]]["quantization"]
               for s in manifest["states"])


def test_bridge_error_paths_on_arm64(arm64, apk):
    info = key_values(arm64("errors", apk["lib"] / "libtflitejni.so", apk["path"],
                            apk["model_offset"], apk["model_length"]).stdout)
    iae, ise = "java/lang/IllegalArgumentException: ", "java/lang/IllegalStateException: "
    assert info["null_model"] == iae + "buffer is null, expected a direct ByteBuffer"
    assert info["heap_model"].startswith(iae + "buffer is not a direct ByteBuffer")
    for case in ("garbage_model", "truncated_model"):
        assert info[case] == ise + ("TfLiteModelCreate failed: the buffer is not a valid "
                                    ".tflite flatbuffer"), case
    assert info["zero_threads"] == iae + "numThreads must be >= 1"
    assert info["unknown_signature"] == iae + ("TfLiteInterpreterGetSignatureRunner found no "
                                               "such signature key")
    assert info["unknown_input"] == iae + "signature has no input of that name"
    assert info["unknown_output"] == iae + "signature has no output of that name"
    assert info["short_input"] == iae + "buffer capacity differs from the input tensor's byte size"
    assert info["heap_input"].startswith(iae + "buffer is not a direct ByteBuffer")
    assert info["long_output"] == iae + ("buffer capacity differs from the output tensor's "
                                         "byte size")
    assert info["invoke_after_errors"] == "ok"
