"""Reduced precision: float16 arithmetic (the metadata XNNPACK reads, float32 I/O, its error
bound), the int8 file's int8 states and its calibration draw."""
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from helpers import random_video, runner_step, runner_zero_states, stream_per_frame
from movinet_tf.export_lib import CompiledRunner, TFLiteStreamer, op_counts, reduced_precision
from movinet_tf.export_lib.frame_graph import FrameGraph
from movinet_tf.export_lib.quantize import calibration_samples


def _cpu_has_float16_arithmetic():
    """Whether this CPU computes in float16 natively (x86 AVX512-FP16, Arm FP16 SIMD)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_fp16", "asimdhp"})


def _stream(runner, clip):
    """Logits [T, N] of `clip` streamed through a signature-runner-like callable."""
    return stream_per_frame(runner_step(runner), clip, runner_zero_states(runner))[0]


def test_float16_arithmetic_model_within_its_bound_of_keras(exports, test_clips,
                                                            keras_stream_logits):
    result = exports("float16_arithmetic")
    # The converter's reduced-precision flag: float16 inference and accumulation allowed,
    # which is what LiteRT's XNNPACK delegate needs to compute in float16.
    assert reduced_precision(result.model_path) == "fp16accfp16"
    assert reduced_precision(exports("none").model_path) is None
    assert result.size_bytes < 0.6 * exports("none").size_bytes  # float16 weights
    interpreter = Interpreter(model_path=result.model_path)
    runner = interpreter.get_signature_runner()
    for details in (runner.get_input_details(), runner.get_output_details()):
        assert {np.dtype(d["dtype"]).name for d in details.values()} <= {"float32", "int32"}
    # Default XNNPACK on a CPU without native float16 arithmetic (x86): float32 compute
    # on float16 weights. Forced float16 (what an ARMv8.2 phone runs): float16 compute.
    # Measured on this model (logits up to ~20): max |err| 0.0087 and 0.106, mean 0.0033
    # and 0.023, top-1 24/24 in both; bounds with margin.
    default = [_stream(runner, clip) for clip in test_clips]
    forced_runner = CompiledRunner(result.model_path, force_fp16=True)
    forced = [_stream(forced_runner, clip) for clip in test_clips]
    expected = np.stack(keras_stream_logits)
    assert np.abs(expected).max() > 5.0
    default_error = np.abs(np.stack(default) - expected)
    forced_error = np.abs(np.stack(forced) - expected)
    assert default_error.max() < 0.05, default_error.max()
    assert forced_error.max() < 0.5 and forced_error.mean() < 0.1, forced_error.max()
    # The forced run really runs in float16: its error is above the weights' alone. Where the
    # CPU has float16 arithmetic, XNNPACK computes in it (measured on this project's earlier
    # Intel Xeon with AMX: 7x the default's mean error); elsewhere it keeps float16 activations between
    # ops and computes each op in float32 (measured on an AMD EPYC without AVX512-FP16:
    # 1.8x).
    ratio = forced_error.mean() / default_error.mean()
    assert ratio > (2.0 if _cpu_has_float16_arithmetic() else 1.2), ratio
    for got in (default, forced):
        assert (np.argmax(np.stack(got), -1) == np.argmax(expected, -1)).all()


@pytest.mark.slow
def test_int8_states_cross_in_int8_and_change_no_number(exports, test_clips):
    """quantize.int8_states: the int8 file's stored-int8 states enter and leave in int8."""
    int8 = exports("int8")
    plain = exports("int8", int8_states=False)   # the same calibration, float32 states
    states = {s["name"]: s for s in int8.manifest["states"]}
    inputs = {e["name"]: e for e in int8.manifest["inputs"]}
    outputs = {e["name"]: e for e in int8.manifest["outputs"]}
    buffers = {name for name in states if name.endswith("_stream_buffer")}
    as_int8 = {name for name, s in states.items() if s["dtype"] == "int8"}
    assert buffers and buffers <= as_int8, sorted(buffers - as_int8)
    assert all(states[name]["dtype"] == "int32" for name in states if name.endswith("_count"))
    for name in as_int8:   # one scale and zero point in and out, recorded in the manifest
        assert inputs[name]["quantization"] == outputs[name]["quantization"] is not None, name
    assert {s["dtype"] for s in plain.manifest["states"]} == {"float32", "int32"}
    assert int8.state_bytes < 0.5 * plain.state_bytes, (int8.state_bytes, plain.state_bytes)
    # Both ways happen here: the first int8 stages' buffers lose their QUANTIZE; the float
    # stages' buffers (block1) get a DEQUANTIZE at the front instead of one at the end.
    assert op_counts(int8.model_path)["QUANTIZE"] < op_counts(plain.model_path)["QUANTIZE"]
    assert any(name.startswith("state_block1_") for name in as_int8)
    # Bit for bit the same logits, and the same states once dequantized.
    ours, reference = TFLiteStreamer(int8.model_path), TFLiteStreamer(plain.model_path)
    for clip in test_clips:
        ours.reset()
        reference.reset()
        for frame in clip:
            np.testing.assert_array_equal(ours.step(frame), reference.step(frame))
        got, expected = ours.states, reference.states
        for name in as_int8:
            quantization = inputs[name]["quantization"]
            real = ((got[name].astype(np.float32) - quantization["zero_point"]) *
                    np.float32(quantization["scale"]))
            np.testing.assert_array_equal(real, expected[name], err_msg=name)
        assert any(np.abs(expected[name]).max() > 0 for name in as_int8)


def test_calibration_frames_follow_the_seed(a0_stream):
    """int8 calibration samples frame 0 and seeded later frames, with the states streamed there."""
    graph = FrameGraph(a0_stream, (32, 32))
    video = random_video([1, 12, 32, 32, 3], seed=7)[0]

    def draw(seed):
        samples = list(calibration_samples(graph, [video], "published", seed=seed))
        frames = [int(np.argmin([np.abs(s["image"].reshape(video[t].shape) - video[t]).max()
                                 for t in range(len(video))])) for s in samples]
        return frames, samples

    frames, samples = draw(0)
    assert frames[0] == 0 and len(samples) <= 4
    assert draw(0)[0] == frames                       # The same seed draws the same frames.
    assert any(draw(seed)[0] != frames for seed in (1, 2, 3))
    assert max(frames) > 0
    later = samples[frames.index(max(frames))]
    # A later frame's sample carries the states streamed up to it, not zeros.
    assert any(np.abs(value).max() > 0 for name, value in later.items() if name != "image")
