"""The app's Java StreamingClassifier + JNI bridge + real TFLite runtime, on the JVM.

Parity reference: Python LiteRT (`ai_edge_litert` signature runner, a different binary of the
runtime) over the same preprocessed frames of a real clip, carrying states by name.
"""
import numpy as np
import pytest

from tests.android.support import IMAGE_SIZE, NUM_CLASSES, key_values, litert_stream

# Resolve the runtime (skip/fail fast) before the session's model export.
pytestmark = pytest.mark.usefixtures("harness")

# Published A0-stream state count (43: stream + pool buffers, pool frame counts, head pool).
A0_STATE_COUNT = 43
# Logits of the same float32 model through two builds of the runtime (Java/JNI vs Python).
PARITY_ATOL = 1e-5


@pytest.fixture(scope="module")
def model_frames(clip_frames):
    """The project's eval preprocessing of the clip: float32 [30, 172, 172, 3]."""
    from movinet_tf.data.preprocess import preprocess_eval_frames

    return preprocess_eval_frames(clip_frames, IMAGE_SIZE, IMAGE_SIZE)


@pytest.fixture(scope="module")
def java_run(harness, stream_model, model_frames, tmp_path_factory):
    out = tmp_path_factory.mktemp("java_run")
    frames_file = out / "frames.f32"
    model_frames.astype("<f4").tofile(frames_file)
    result = harness("stream", stream_model["tflite"], frames_file, 2, out / "run")
    info = key_values(result.stdout)
    count = len(model_frames)

    def load(suffix, dtype="<f4", width=NUM_CLASSES):
        return np.fromfile(out / f"run.{suffix}", dtype).reshape(count, width)

    return {"info": info, "stderr": result.stderr, "logits": load("logits.f32"),
            "probs": load("probs.f32"),
            "top3": load("top3.i32", "<i4", 3), "rerun": load("rerun.f32"),
            "switch": load("switch.f32")}


def _python_litert(model_path, frames, carry_states=True):
    """Logits [T, N] through Python LiteRT (`litert_stream`), and the runner's input and
    output names."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(model_path)).get_signature_runner("serving_default")
    logits = litert_stream(model_path, np.asarray(frames, np.float32), carry_states=carry_states)
    return logits, sorted(runner.get_input_details()), sorted(runner.get_output_details())


@pytest.fixture(scope="module")
def python_run(stream_model, model_frames):
    logits, inputs, outputs = _python_litert(stream_model["tflite"], model_frames)
    return {"logits": logits, "inputs": inputs, "outputs": outputs}


def test_logits_equal_python_litert_frame_by_frame(java_run, python_run, model_frames):
    java, python = java_run["logits"], python_run["logits"]
    assert java.shape == (len(model_frames), NUM_CLASSES)
    per_frame = np.abs(java - python).max(axis=1)
    assert per_frame.max() <= PARITY_ATOL, f"per-frame max |diff|: {per_frame}"
    # Not a vacuous match: the frames give different predictions.
    assert np.abs(java[0] - java[-1]).max() > 1e-2


def test_states_are_carried_between_frames(java_run, stream_model, model_frames):
    # Dropping the states (zeros every frame) must change the logits beyond the parity
    # tolerance, so matching the carried Python run proves Java carries them.
    stateless, _, _ = _python_litert(stream_model["tflite"], model_frames, carry_states=False)
    assert np.allclose(java_run["logits"][0], stateless[0], atol=PARITY_ATOL)
    assert np.abs(java_run["logits"][1:] - stateless[1:]).max() > 100 * PARITY_ATOL


def test_interpreter_runs_on_xnnpack(java_run):
    # The runtime's C API interpreter adds no CPU delegate by itself; the bridge adds XNNPACK
    # (about 6x faster here), and the runtime logs its creation.
    assert "Created TensorFlow Lite XNNPACK delegate for CPU" in java_run["stderr"]


def test_states_are_paired_by_name(java_run, python_run, stream_model):
    java_states = java_run["info"]["states"].split(",")
    python_inputs = [n for n in python_run["inputs"] if n != "image"]
    python_outputs = [n for n in python_run["outputs"] if n != "logits"]
    assert len(java_states) == A0_STATE_COUNT
    assert java_states == python_inputs == python_outputs
    assert "state_head_pool_frame_count" in java_states
    assert int(java_run["info"]["height"]) == int(java_run["info"]["width"]) == IMAGE_SIZE
    if stream_model["manifest"] is not None:
        manifest_text = stream_model["manifest"].read_text()
        for name in java_states:
            assert f'"{name}"' in manifest_text, f"{name} missing from the state manifest"


def test_reset_then_rerun_is_bit_identical(java_run):
    assert java_run["info"]["frames_since_reset"] == str(len(java_run["logits"]))
    assert java_run["info"]["frames_after_reset"] == "0"
    np.testing.assert_array_equal(java_run["rerun"], java_run["logits"])


def test_thread_switch_mid_clip_keeps_states(java_run):
    # Half the clip on 2 threads, then setNumThreads(3) recreates the interpreter.
    assert java_run["info"]["threads_after_switch"] == "3"
    np.testing.assert_allclose(java_run["switch"], java_run["logits"], rtol=0, atol=PARITY_ATOL)


def test_thread_count_reaches_the_interpreter(harness, stream_model):
    # The reference app built options with a thread count and never passed them. Here the
    # runtime's CPU thread pool must grow by the extra threads and shrink back.
    info = key_values(harness("threads", stream_model["tflite"], 1, 4).stdout)
    low, high, back = (int(info[k]) for k in ("os_threads_low", "os_threads_high",
                                              "os_threads_back"))
    assert info["num_threads"] == "4"
    assert high - low >= 3, info
    assert back == low, info


def test_softmax_and_top3_of_java_logits(java_run):
    logits = java_run["logits"].astype(np.float64)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(java_run["probs"], expected, rtol=0, atol=1e-6)
    expected_top3 = np.argsort(-java_run["probs"], axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(java_run["top3"], expected_top3)


def test_label_count_must_equal_class_count(harness, stream_model, tmp_path):
    info = key_values(harness("labels", stream_model["labels"], NUM_CLASSES).stdout)
    assert info["labels"] == str(NUM_CLASSES)
    assert info["first"] == stream_model["labels_list"][0]
    assert info["last"] == stream_model["labels_list"][-1]

    short = tmp_path / "short.txt"
    short.write_text("\n".join(stream_model["labels_list"][:-1]) + "\n")
    error = key_values(harness("labels", short, NUM_CLASSES).stdout)["error"]
    assert f"has {NUM_CLASSES - 1} labels" in error and f"{NUM_CLASSES} classes" in error

    gap = tmp_path / "gap.txt"
    gap.write_text("a\n\nb\n")
    error = key_values(harness("labels", gap, 3).stdout)["error"]
    assert "line 2 is blank" in error


@pytest.fixture(scope="module")
def unpaired_model(tmp_path_factory):
    """A tiny streaming-shaped TFLite whose state input and output names differ."""
    import tensorflow as tf

    image = tf.TensorSpec([1, 1, 8, 8, 3], tf.float32, name="image")
    state = tf.TensorSpec([1, 4], tf.float32, name="state_a")

    @tf.function(input_signature=[{"image": image, "state_a": state}])
    def serving_default(inputs):
        pooled = tf.reduce_mean(inputs["image"], axis=[1, 2, 3])
        return {"logits": pooled + inputs["state_a"][:, :3],
                "state_b": inputs["state_a"] + 1.0}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serving_default.get_concrete_function()], tf.Module())
    path = tmp_path_factory.mktemp("unpaired") / "unpaired.tflite"
    path.write_bytes(converter.convert())
    return path


def test_unpaired_state_names_are_rejected(harness, unpaired_model):
    error = key_values(harness("open", unpaired_model).stdout)["error"]
    assert "do not pair up by name" in error
    assert "[state_a]" in error and "[state_b]" in error
