"""The app's input contract (manifest key `input_contract`) on the JVM, and a uint8-input model
through the Java core.

The core reads the contract with its own JSON reader (`InputContract`, `Json`), checks it against
the model's image tensor, feeds frames at its rate (`FrameGate`), and quantizes frames for an
8-bit input (`Quantization`). Reference for the uint8 stream: Python LiteRT over the same frames,
quantized and carried by the same formulas written in numpy.
"""
import json

import numpy as np
import pytest

from tests.android.support import (CLIP_FPS, SMALL_CLASSES, key_values, litert_stream,
                                   logits_step, quantize_frames)

pytestmark = pytest.mark.usefixtures("harness")

# Both sides run x86_64 integer kernels (two builds of the runtime); measured equal.
UINT8_STEPS = 1


def _contract(harness, model, manifest):
    return key_values(harness("contract", model, manifest).stdout)


def _edited_manifest(model, tmp_path, edit):
    manifest = json.loads(model["manifest"].read_text())
    edit(manifest)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(manifest))
    return path


def test_contract_is_read_from_the_manifest(harness, small_model):
    contract = small_model["contract"]
    info = _contract(harness, small_model["tflite"], small_model["manifest"])
    assert float(info["frame_rate"]) == contract["frame_rate"] == 12.5
    assert info["image_size"] == ",".join(str(v) for v in contract["image_size"])
    assert int(info["min_image_size"]) == contract["min_image_size"]
    assert info["dtype"] == "float32" and float(info["scale"]) == 0.0
    assert info["defaults"] == "null"  # nothing assumed, nothing logged
    # The frame gate follows the contract: 12.5 of a 30 fps camera's frames per second.
    assert int(info["frame_period_ns"]) == 80_000_000
    assert info["camera_30fps_10s_accepted"] == "125"


def test_uint8_contract_carries_the_input_quantization(harness, uint8_model):
    quant = uint8_model["contract"]["quantization"]
    info = _contract(harness, uint8_model["tflite"], uint8_model["manifest"])
    assert info["dtype"] == "uint8"
    assert float(info["scale"]) == pytest.approx(quant["scale"], rel=1e-6)
    assert int(info["zero_point"]) == quant["zero_point"]
    assert float(info["frame_rate"]) == 5.0
    assert info["camera_30fps_10s_accepted"] == "50"


def test_missing_contract_uses_the_documented_defaults_and_says_so(harness, small_model,
                                                                   tmp_path):
    without = _edited_manifest(small_model, tmp_path, lambda m: m.pop("input_contract"))
    info = _contract(harness, small_model["tflite"], without)
    assert float(info["frame_rate"]) == 5.0
    assert info["image_size"] == "32,32" and info["min_image_size"] == "32"
    assert info["defaults"].startswith("the manifest has no input_contract; using defaults: "
                                       "5.0 fps, 32x32 float32 input from the model")
    info = _contract(harness, small_model["tflite"], "-")
    assert info["defaults"].startswith("no manifest in the app; using defaults")
    # A null frame rate (unknown at export) falls back too, and says so.
    unknown = _edited_manifest(small_model, tmp_path,
                               lambda m: m["input_contract"].update(frame_rate=None))
    info = _contract(harness, small_model["tflite"], unknown)
    assert float(info["frame_rate"]) == 5.0
    assert "frame_rate is null (unknown)" in info["defaults"]


@pytest.mark.parametrize("field, value, message", [
    ("image_size", [64, 64], "input_contract.image_size is [64, 64] but the model's input"),
    ("dtype", "uint8", "input_contract.dtype is uint8 but the model's input is 'image' FLOAT32"),
    ("channels", "BGR", "input_contract.channels is 'BGR', this app feeds RGB only"),
    ("frame_rate", -1.0, "input_contract.frame_rate is -1.0, expected a positive number"),
    ("min_image_size", 16, "input_contract.min_image_size is 16, expected at least"),
    ("value_range", [1.0, 0.0], "input_contract.value_range is [1.0, 0.0], expected"),
    ("quantization", {"scale": 0.5, "zero_point": 0},
     "input_contract.quantization is set for a float32 input"),
])
def test_contract_that_disagrees_with_the_model_is_refused(harness, small_model, tmp_path,
                                                           field, value, message):
    edited = _edited_manifest(small_model, tmp_path,
                              lambda m: m["input_contract"].update({field: value}))
    assert message in _contract(harness, small_model["tflite"], edited)["error"]


def test_malformed_contracts_are_refused(harness, small_model, uint8_model, tmp_path):
    missing_key = _edited_manifest(small_model, tmp_path,
                                   lambda m: m["input_contract"].pop("frame_rate"))
    assert (_contract(harness, small_model["tflite"], missing_key)["error"]
            == "input_contract has no 'frame_rate'")
    wrong_scale = _edited_manifest(
        uint8_model, tmp_path, lambda m: m["input_contract"]["quantization"].update(scale=0.01))
    error = _contract(harness, uint8_model["tflite"], wrong_scale)["error"]
    assert error.startswith("input_contract.quantization is {scale 0.01, zero_point 0} but "
                            "the model's input is 'image' UINT8")
    broken = tmp_path / "broken.json"
    broken.write_text('{"input_contract": {"frame_rate": 5,}')
    assert (_contract(harness, small_model["tflite"], broken)["error"]
            == "invalid JSON at offset 36: expected a quoted key")


@pytest.fixture(scope="module")
def uint8_frames(bikes_clip, uint8_model):
    """30 frames of bikes.mp4 at the contract's 5 fps, eval-preprocessed: float32 [0, 1]."""
    from movinet_tf.data.preprocess import preprocess_eval_frames
    from movinet_tf.data.video_io import read_video

    contract = uint8_model["contract"]
    stride = int(CLIP_FPS / contract["frame_rate"])
    frames, _ = read_video(bikes_clip, max_frames=30 * stride)
    return preprocess_eval_frames(np.ascontiguousarray(frames[::stride]),
                                  contract["image_size"][0], contract["min_image_size"])


def test_uint8_model_on_the_jvm_equals_python_litert(harness, uint8_model, uint8_frames,
                                                     tmp_path):
    frames_file = tmp_path / "frames.f32"
    uint8_frames.astype("<f4").tofile(frames_file)
    result = harness("stream", uint8_model["tflite"], frames_file, 2, tmp_path / "run",
                     uint8_model["manifest"])
    info = key_values(result.stdout)
    assert info["image_type"] == "UINT8" and info["frame_rate"] == "5.0"
    java = np.fromfile(tmp_path / "run.logits.f32", "<f4").reshape(-1, SMALL_CLASSES)
    quant = uint8_model["contract"]["quantization"]
    reference = litert_stream(uint8_model["tflite"],
                              quantize_frames(uint8_frames, quant["scale"], quant["zero_point"]))
    manifest = json.loads(uint8_model["manifest"].read_text())
    steps = np.abs(java - reference).max(axis=1) / logits_step(uint8_model["tflite"], manifest)
    assert steps.max() <= UINT8_STEPS, f"per-frame max |diff| in logit steps: {steps}"
    np.testing.assert_array_equal(java.argmax(axis=1), reference.argmax(axis=1))
    assert np.abs(java[0] - java[-1]).max() > 0.05
    # reset() restores the zero states (zero points), so a re-run is bit-identical.
    np.testing.assert_array_equal(
        np.fromfile(tmp_path / "run.rerun.f32", "<f4").reshape(java.shape), java)
