"""A temporal ensemble exported as ONE single-frame streaming TFLite file, and as a SavedModel."""
import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import movinet_tf
from helpers import keras_step, random_video, randomize_weights, runner_zero_states
from helpers import stream_per_frame
from movinet_tf import config as config_lib
from movinet_tf.ensemble import FRAME_COUNT_NAME, TemporalEnsemble
from movinet_tf.export_lib import TFLiteStreamer, export_saved_model, export_tflite, op_counts

IMAGE_SIZE = 32
NUM_FRAMES = 7  # Odd: member 0 gets one frame more than member 1.
# float32 TFLite against Keras, logits of magnitude ~10.
ATOL = 1e-4


def _tiny_member(seed):
    spec = config_lib.load_config("tiny").model.block_specs
    model = movinet_tf.build_model("tiny", stream=True, num_classes=5, block_specs=spec)
    return randomize_weights(model, seed=seed)


@pytest.fixture(scope="module")
def ensemble():
    return TemporalEnsemble([_tiny_member(1), _tiny_member(2)])


@pytest.fixture(scope="module")
def clip():
    return random_video([1, NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE, 3], seed=21)


@pytest.fixture(scope="module")
def exported(ensemble, tmp_path_factory):
    path = tmp_path_factory.mktemp("ensemble") / "ensemble.tflite"
    return export_tflite(ensemble, path, image_size=IMAGE_SIZE, labels=list("abcde"))


def _keras_stream(model, clip):
    states = model.init_states([1, 1, IMAGE_SIZE, IMAGE_SIZE, 3])
    return stream_per_frame(keras_step(model), clip, states)[0]


def test_tflite_ensemble_equals_keras_ensemble_frame_by_frame(ensemble, clip, exported):
    expected = _keras_stream(ensemble, clip)
    assert np.abs(expected).max() > 1.0
    streamer = TFLiteStreamer(exported.model_path)
    assert len(streamer.frame_runners) == 2   # frame t runs frame_mod_<t mod 2>
    got = streamer.run(clip[0])
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    # serving_default (both members behind IF ops) gives the same stream.
    through_if = TFLiteStreamer(exported.model_path, use_frame_signatures=False).run(clip[0])
    np.testing.assert_allclose(through_if, expected, atol=ATOL, rtol=0)
    # After the last frame: the clip-mode ensemble (even frames to member 0, odd to member 1).
    np.testing.assert_allclose(got[-1], ensemble(clip).numpy()[0], atol=ATOL, rtol=0)
    # Frame 0 is member 0's alone; from frame 1 on, the average of both.
    member0 = ensemble.members[0](clip[:, :1]).numpy()[0]
    np.testing.assert_allclose(got[0], member0, atol=ATOL, rtol=0)


def test_one_file_one_signature_prefixed_states_and_one_member_per_frame(ensemble, exported):
    manifest = exported.manifest
    names = [state["name"] for state in manifest["states"]]
    assert names[0] == FRAME_COUNT_NAME
    member_states = [sorted(n for n in names if n.startswith(f"member{i}_")) for i in (0, 1)]
    single = sorted(ensemble.members[0].state_specs([1, 1, IMAGE_SIZE, IMAGE_SIZE, 3]))
    assert member_states[0] == sorted(["member0_logits"] + [f"member0_{n}" for n in single])
    assert len(set(names)) == len(names) == 1 + 2 * (1 + len(single))
    counts = op_counts(exported.model_path)
    assert counts.get("IF", 0) == 2, counts  # One conditional per member: only one runs.
    assert not any(op.startswith("CUSTOM") or "FLEX" in op for op in counts)
    # The members' convs sit in the IF branches (not in the main graph that runs every
    # frame) and once more in the per-member frame signatures.
    single_path = exported.model_path.replace("ensemble.tflite", "member0.tflite")
    single_counts = export_tflite(ensemble.members[0], single_path, image_size=IMAGE_SIZE).op_counts
    assert counts["CONV_2D"] == 4 * single_counts["CONV_2D"]


def _run_frame_signatures(path, clip):
    """Streams `clip` calling signature frame_mod_<t mod 2> for frame t; logits [T, N].

    Every state starts at zero and lives in one dict; each call reads the states its
    signature takes and writes back what it returns, so the other member's states
    are untouched that frame.
    """
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=path, num_threads=1)
    runners = [interpreter.get_signature_runner(f"frame_mod_{i}") for i in (0, 1)]
    frame_index = itertools.count()

    def step(frame, states):
        runner = runners[next(frame_index) % 2]
        wanted = [name for name in runner.get_input_details() if name != "image"]
        result = runner(image=frame[None, None], **{name: states[name] for name in wanted})
        logits = result.pop("logits")
        assert set(result) < set(wanted)  # it writes only what it changes
        return logits, {**states, **result}

    zeros = {}
    for runner in runners:
        zeros.update(runner_zero_states(runner))
    return stream_per_frame(step, clip, zeros)[0]


def test_frame_signatures_run_one_member_each_and_equal_keras(ensemble, clip, exported):
    expected = _keras_stream(ensemble, clip)
    got = _run_frame_signatures(exported.model_path, clip)
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    entries = exported.manifest["frame_signatures"]
    assert [e["signature"] for e in entries] == ["frame_mod_0", "frame_mod_1"]
    single = ensemble.members[0].state_specs([1, 1, IMAGE_SIZE, IMAGE_SIZE, 3])
    for index, entry in enumerate(entries):
        own = [n for n in entry["output_states"] if n.startswith(f"member{index}_")]
        assert len(own) == len(single) + 1  # its states and its logits
        other = f"member{1 - index}_"
        assert not any(n.startswith(other) for n in entry["output_states"])
        assert [n for n in entry["input_states"] if n.startswith(other)] == [other + "logits"]
    # Each frame signature is its own subgraph holding one member's convs and no IF.
    from ai_edge_litert.tools import flatbuffer_utils
    with open(exported.model_path, "rb") as f:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(f.read()))
    single_convs = export_tflite(
        ensemble.members[0], exported.model_path.replace("ensemble.tflite", "one.tflite"),
        image_size=IMAGE_SIZE).op_counts["CONV_2D"]
    for signature in model.signatureDefs:
        if signature.signatureKey.decode().startswith("frame_mod_"):
            ops = [flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)
                   for op in model.subgraphs[signature.subgraphIndex].operators]
            assert "IF" not in ops
            assert ops.count("CONV_2D") == single_convs


def test_int8_ensemble_states_are_int8_with_one_type_in_every_signature(ensemble, clip,
                                                                         tmp_path):
    """quantize.int8_states on an ensemble file: a member's int8 buffers are int8, with one
    quantization, in its frame_mod signature and in serving_default (which wraps them), and
    the frame signatures give the float-state file's logits bit for bit."""
    calibration = [random_video([1, 8, IMAGE_SIZE, IMAGE_SIZE, 3], seed=500 + i)[0]
                   for i in range(2)]
    paths = {}
    for int8_states in (True, False):
        paths[int8_states] = tmp_path / f"ensemble_int8_{int8_states}.tflite"
        export_tflite(ensemble, paths[int8_states], image_size=IMAGE_SIZE, quantize="int8",
                      calibration_videos=calibration, int8_states=int8_states)
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(paths[True]))
    kinds = {}
    for key in interpreter.get_signature_list():
        runner = interpreter.get_signature_runner(key)
        for details in (runner.get_input_details(), runner.get_output_details()):
            for name, detail in details.items():
                kinds.setdefault(name, set()).add(
                    (np.dtype(detail["dtype"]).name, tuple(detail["quantization"])))
    assert len(kinds) > 10 and all(len(k) == 1 for k in kinds.values()), kinds
    as_int8 = sorted(name for name, k in kinds.items() if next(iter(k))[0] == "int8")
    assert any(name.startswith("member0_") for name in as_int8)
    assert any(name.startswith("member1_") for name in as_int8)
    video = clip[0]
    exact = TFLiteStreamer(paths[True]).run(video)
    np.testing.assert_array_equal(exact, TFLiteStreamer(paths[False]).run(video))
    # serving_default re-rounds the member states to frame_mod's int8 grid: close, not equal.
    # Measured: max |diff| 0.21 against the frame signatures, on logits up to 2.6; the
    # float-state file's serving_default is 0.24 off them (the two kinds of signature are
    # calibrated apart). Bound with margin.
    wrapped = TFLiteStreamer(paths[True], use_frame_signatures=False).run(video)
    scale = float(np.abs(exact).max())
    assert scale > 1.0
    assert np.abs(wrapped - exact).max() < 0.2 * scale, (np.abs(wrapped - exact).max(), scale)


def test_saved_model_of_an_ensemble_loads_without_movinet_tf(ensemble, clip, tmp_path):
    directory = export_saved_model(ensemble, tmp_path / "sm", labels=list("abcde"),
                                   image_size=IMAGE_SIZE)
    np.save(tmp_path / "clip.npy", clip)
    script = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        loaded = tf.saved_model.load({str(directory)!r})
        clip = np.load({str(tmp_path / 'clip.npy')!r})
        out = loaded.signatures["serving_default"](image=tf.constant(clip))
        np.save({str(tmp_path / 'logits.npy')!r}, out["logits"].numpy())
        assert "movinet_tf" not in sys.modules
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=300, check=False, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), ensemble(clip).numpy(),
                               atol=ATOL, rtol=0)
