"""Single-frame streaming TFLite export, run with the real LiteRT interpreter."""
import collections
import json
import os
import re

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

import movinet_tf
from helpers import keras_step, runner_step, runner_zero_states, stream_per_frame
from movinet_tf.export_lib import TFLiteStreamer, export_tflite, op_counts
from movinet_tf.export_lib.tflite_export import build_manifest, compare_with_float

from .conftest import IMAGE_SIZE, LABELS, NUM_CLASSES

# Builtin ops the float export may contain; anything else (CUSTOM, Flex) fails the test.
EXPECTED_FLOAT_OPS = {"ADD", "CAST", "CONCATENATION", "CONV_2D",
                      "DEPTHWISE_CONV_2D", "DIV", "HARD_SWISH", "LOGISTIC", "MEAN", "MUL",
                      "RESHAPE", "STRIDED_SLICE", "SUB"}


def _stream_tflite(path, clips):
    streamer = TFLiteStreamer(path)
    return [streamer.run(clip) for clip in clips]


def test_float_tflite_equals_keras_frame_by_frame(exports, test_clips, keras_stream_logits,
                                                  a0_stream):
    result = exports("none")
    for got, expected in zip(_stream_tflite(result.model_path, test_clips), keras_stream_logits):
        assert np.abs(expected).max() > 1.0
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    # And the last frame's logits are the whole-clip forward pass.
    clip_logits = a0_stream(test_clips[0][None]).numpy()[0]
    np.testing.assert_allclose(_stream_tflite(result.model_path, test_clips[:1])[0][-1],
                               clip_logits, atol=1e-4, rtol=0)


def test_signature_and_builtin_ops_only(exports, a0_stream):
    result = exports("none")
    interpreter = Interpreter(model_path=result.model_path)
    signatures = interpreter.get_signature_list()
    assert list(signatures) == ["serving_default"]
    names = list(a0_stream.state_specs([1, 1, IMAGE_SIZE, IMAGE_SIZE, 3]))
    assert sorted(signatures["serving_default"]["inputs"]) == sorted(["image"] + names)
    assert sorted(signatures["serving_default"]["outputs"]) == sorted(["logits"] + names)
    inputs = interpreter.get_signature_runner().get_input_details()
    assert tuple(inputs["image"]["shape"]) == (1, 1, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert inputs["image"]["dtype"] == np.float32
    counts = op_counts(result.model_path)
    # The runtime's own node list, without delegation (each node is one op of the file).
    plain = Interpreter(model_path=result.model_path,
                        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    plain.allocate_tensors()
    assert counts == collections.Counter(op["op_name"] for op in plain._get_ops_details())
    assert result.op_counts == counts
    assert set(counts) <= EXPECTED_FLOAT_OPS, set(counts) - EXPECTED_FLOAT_OPS
    assert counts["CONV_2D"] >= 60  # the convs really are there


def test_manifest_pairs_states_by_index(exports, test_clips, keras_stream_logits, a0_stream):
    """A runtime without the signature API: bind tensors by the manifest's indices only."""
    result = exports("none")
    with open(result.manifest_path) as f:
        manifest = json.load(f)
    assert manifest == result.manifest
    # Every state of the Keras model, with its shape, dtype and size from the Keras specs,
    # and the tensor indices LiteRT's signature runner gives for its name.
    specs = a0_stream.state_specs([1, 1, IMAGE_SIZE, IMAGE_SIZE, 3])
    runner = Interpreter(model_path=result.model_path).get_signature_runner()
    in_details, out_details = runner.get_input_details(), runner.get_output_details()
    assert [s["name"] for s in manifest["states"]] == list(specs)
    for entry in manifest["states"]:
        spec = specs[entry["name"]]
        assert entry["published_shape"] == entry["shape"] == list(spec.shape)
        assert entry["dtype"] == spec.dtype.name
        assert entry["bytes"] == int(np.prod(spec.shape)) * spec.dtype.size
        assert entry["input_index"] == in_details[entry["name"]]["index"]
        assert entry["output_index"] == out_details[entry["name"]]["index"]
    assert manifest["num_states"] == len(specs)
    assert manifest["state_bytes"] == sum(int(np.prod(spec.shape)) * spec.dtype.size
                                          for spec in specs.values())
    assert manifest["inputs"][0]["index"] == in_details["image"]["index"]
    assert manifest["outputs"][0]["index"] == out_details["logits"]["index"]
    assert manifest["num_classes"] == NUM_CLASSES and manifest["image_size"] == [32, 32]
    assert manifest["labels_file"] == os.path.basename(result.labels_path)
    with open(result.labels_path) as f:
        assert f.read().splitlines() == LABELS
    interpreter = Interpreter(model_path=result.model_path)
    interpreter.allocate_tensors()
    image_index = manifest["inputs"][0]["index"]
    logits_index = manifest["outputs"][0]["index"]

    def step(frame, states):  # Tensors by the manifest's indices, as an app would.
        interpreter.set_tensor(image_index, frame[None, None])
        for index, value in states.items():
            interpreter.set_tensor(index, value)
        interpreter.invoke()
        return interpreter.get_tensor(logits_index), {
            s["input_index"]: interpreter.get_tensor(s["output_index"])
            for s in manifest["states"]}

    states = {s["input_index"]: np.zeros(s["shape"], s["dtype"]) for s in manifest["states"]}
    logits, _ = stream_per_frame(step, test_clips[1], states)
    np.testing.assert_allclose(logits[-1], keras_stream_logits[1][-1], atol=1e-4, rtol=0)
    # Deterministic: rebuilding the manifest from the same flatbuffer gives the same text.
    from movinet_tf.export_lib.frame_graph import FrameGraph
    with open(result.model_path, "rb") as f:
        content = f.read()
    again = build_manifest(content, FrameGraph(a0_stream, IMAGE_SIZE), layout="published", quantize="none", model_file=manifest["model_file"],
                           labels_file=manifest["labels_file"], model_id="a0", min_image_size=36)
    assert json.dumps(again, sort_keys=True) == json.dumps(manifest, sort_keys=True)
    # No temporary files left beside the outputs.
    leftovers = [n for n in os.listdir(os.path.dirname(result.model_path)) if n.startswith(".")]
    assert not leftovers


def test_gpu_compatible_states_are_4d_and_equal(exports, test_clips, keras_stream_logits):
    result = exports("none", gpu=True)
    interpreter = Interpreter(model_path=result.model_path)
    runner = interpreter.get_signature_runner()
    for details in (runner.get_input_details(), runner.get_output_details()):
        assert max(len(d["shape"]) for d in details.values()) <= 4
    assert tuple(runner.get_input_details()["image"]["shape"]) == (1, IMAGE_SIZE, IMAGE_SIZE, 3)
    by_name = {s["name"]: s for s in result.manifest["states"]}
    buffer = by_name["state_block1_layer0_stream_buffer"]
    assert len(buffer["shape"]) == 4 and buffer["published_shape"] == [1] + buffer["shape"]
    assert result.manifest["state_layout"] == "frame"
    assert result.state_bytes == exports("none").state_bytes
    got = _stream_tflite(result.model_path, test_clips[:1])[0]
    np.testing.assert_allclose(got, keras_stream_logits[0], atol=1e-4, rtol=0)


# Bounds from measurements on this random-weight model (logits up to ~20 in magnitude):
# float16 max |err| 0.0044, dynamic 0.19, both 24/24 top-1; see docs/export.md.
@pytest.mark.slow
@pytest.mark.parametrize("mode,max_error,min_agreement", [
    ("float16", 0.1, 1.0),
    ("dynamic", 1.0, 0.9),
])
def test_weight_quantized_modes_stay_close(exports, a0_stream, test_clips, mode, max_error,
                                           min_agreement):
    result = exports(mode)
    assert result.size_bytes < 0.6 * exports("none").size_bytes
    quality = compare_with_float(a0_stream, result.model_path, test_clips)
    assert quality["max_logit_error"] < max_error, quality
    assert quality["top1_agreement_frames"] >= min_agreement, quality


@pytest.mark.slow
def test_int8_agreement(exports, a0_stream, test_clips):
    result = exports("int8")
    assert result.size_bytes < 0.35 * exports("none").size_bytes
    quality = compare_with_float(a0_stream, result.model_path, test_clips)
    # Measured here: top-1 agreement 23/24 frames (3/3 at the last frame), max |err| 0.66
    # (1.13 before hard-swish and the means stayed float) on logits up to ~20
    # (docs/export.md); bounds with margin.
    assert quality["top1_agreement_frames"] >= 0.85, quality
    assert quality["top1_agreement_final"] >= 2 / 3, quality
    assert quality["max_logit_error"] < 1.5, quality
    inputs = {d["name"]: d for d in result.manifest["inputs"]}
    assert inputs["image"]["dtype"] == "float32"  # float I/O: the app's code does not change
    # Every cumulative mean stays float32: each running-mean update has one SUB
    # (x - mean), and the graph has no other, so all of them must be float32.
    # (TensorFlow numbers the repeated name scopes; once only the first mean was float.)
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils
    with open(result.model_path, "rb") as f:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(f.read()))
    graph = model.subgraphs[0]
    subs = [op for op in graph.operators
            if flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) == "SUB"]
    num_means = sum(name.endswith("pool_frame_count")
                    for name in a0_stream.state_specs([1, 1, IMAGE_SIZE, IMAGE_SIZE, 3]))
    assert len(subs) == num_means
    for op in subs:
        types = {graph.tensors[t].type for t in list(op.inputs) + list(op.outputs)}
        assert types == {schema.TensorType.FLOAT32}, types
    # The residual ADDs stay float32 (int32 ones count frames), and so does every conv of
    # the first two stages (quantize.FLOAT_BLOCKS); the other blocks' convs are int8.
    float_convs, int8_convs = set(), set()
    for op in graph.operators:
        name = flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)
        types = {graph.tensors[t].type for t in list(op.inputs) + list(op.outputs) if t >= 0}
        if name == "ADD":
            assert schema.TensorType.INT8 not in types, types
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            output = graph.tensors[op.outputs[0]]
            block = re.search(r"(?:^|[;/])(block\d+)_layer\d+", output.name.decode())
            if block:
                is_float = output.type == schema.TensorType.FLOAT32
                (float_convs if is_float else int8_convs).add(block.group(1))
    assert float_convs == {"block0", "block1"}, (float_convs, int8_convs)
    assert int8_convs == {"block2", "block3", "block4"}, (float_convs, int8_convs)
    # The stem (quantize.FLOAT_BLOCKS) is float32 too, and reads the float image as it is:
    # no QUANTIZE of the image (int8 has no fast 3-channel conv; docs/export.md).
    stem_convs = [op for op in graph.operators
                  if flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) == "CONV_2D"
                  and re.search(r"(^|[;/])stem(_\d+)?/", graph.tensors[op.outputs[0]].name.decode())]
    assert len(stem_convs) == 1
    assert graph.tensors[stem_convs[0].outputs[0]].type == schema.TensorType.FLOAT32
    image = next(e.tensorIndex for e in model.signatureDefs[0].inputs if e.name.decode() == "image")
    assert not [op for op in graph.operators if image in list(op.inputs)
                and flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) == "QUANTIZE"]


@pytest.mark.slow
def test_uint8_image_input_runs_in_litert_and_agrees(exports, a0_stream, test_clips):
    """The full-integer camera model: uint8 image in, real = q / 255, int8 buffers."""
    result = exports("int8_uint8_input")
    image = {d["name"]: d for d in result.manifest["inputs"]}["image"]
    assert image["dtype"] == "uint8"
    assert image["quantization"]["zero_point"] == 0
    assert abs(image["quantization"]["scale"] - 1 / 255) < 1e-9
    runner = Interpreter(model_path=result.model_path).get_signature_runner()
    details = runner.get_input_details()
    assert details["image"]["dtype"] == np.uint8
    # The stem is float32, so the bytes go through one DEQUANTIZE (q / 255) and nothing else.
    from ai_edge_litert.tools import flatbuffer_utils
    with open(result.model_path, "rb") as f:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(f.read()))
    entry = next(e for e in model.signatureDefs[0].inputs if e.name.decode() == "image")
    graph = model.subgraphs[model.signatureDefs[0].subgraphIndex]
    readers = [flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) for op in graph.operators
               if entry.tensorIndex in list(op.inputs)]
    assert readers == ["DEQUANTIZE"], readers
    assert {np.dtype(d["dtype"]).name for n, d in details.items() if n != "image"} == {
        "float32", "int32", "int8"}
    # Camera bytes in; compare with the float Keras model on the same (rounded) frames.
    clip_bytes = np.round(test_clips[0] * 255).astype(np.uint8)
    clip = clip_bytes.astype(np.float32) / 255.0
    got, _ = stream_per_frame(runner_step(runner), clip_bytes, runner_zero_states(runner))
    expected, _ = stream_per_frame(keras_step(a0_stream), clip,
                                   a0_stream.init_states([1, 1, IMAGE_SIZE, IMAGE_SIZE, 3]))
    agree = np.argmax(got, axis=1) == np.argmax(expected, axis=1)
    worst, scale = float(np.abs(got - expected).max()), float(np.abs(expected).max())
    # Same bounds as the float-input int8 model (test_int8_agreement): the image's int8
    # quantization is the same up to the uint8 -> int8 requantization (measured: 23/24
    # frames, max |err| 0.66, as for float input).
    assert scale > 1.0
    assert np.mean(agree) >= 0.85 and worst < 1.5, (np.mean(agree), worst)


# What the LiteRT XNNPACK delegate runs, from its source (tflite/delegates/xnnpack/
# xnnpack_delegate.cc): no CAST in any precision, no integer (int32) arithmetic, and in
# int8 no HARD_SWISH, DIV or AVERAGE_POOL_2D.
XNNPACK_NEVER = {"CAST"}
XNNPACK_NOT_INT8 = {"HARD_SWISH", "DIV", "AVERAGE_POOL_2D"}


def _ops_outside_xnnpack(path):
    """Op indices of subgraph 0 that XNNPACK cannot run, from the documented lists.

    Returns:
        (list of (index, op name, why), the subgraph's ops, its tensors, its inputs).
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils
    with open(path, "rb") as f:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(f.read()))
    graph = model.subgraphs[0]
    int_types = {schema.TensorType.INT32, schema.TensorType.INT64}
    outside = []
    for index, op in enumerate(graph.operators):
        name = flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)
        # The types of the tensors computed at run time (constants such as a MEAN's
        # int32 axes are no int32 arithmetic).
        live = [t for t in list(op.inputs) + list(op.outputs) if t >= 0
                and model.buffers[graph.tensors[t].buffer].data is None]
        types = {graph.tensors[t].type for t in live}
        if name in XNNPACK_NEVER:
            outside.append((index, name, "never"))
        elif name in XNNPACK_NOT_INT8 and schema.TensorType.INT8 in types:
            outside.append((index, name, "int8"))
        elif types & int_types and name != "RESHAPE":
            outside.append((index, name, "int32"))
    return outside, graph.operators, graph.inputs


@pytest.mark.slow
@pytest.mark.parametrize("mode,max_partitions", [("none", 2), ("int8", 3)])
def test_xnnpack_runs_everything_but_the_frame_counts(exports, mode, max_partitions):
    """No op XNNPACK cannot run sits between two delegated ops.

    Checked twice, independently: from the op list against the delegate's documented
    limits (every op it cannot run must be on the int32 frame-count path, fed by the
    graph's inputs only, so that it runs before the delegated graph and does not cut
    it), and from the interpreter itself (its DELEGATE nodes are the partitions).
    """
    result = exports(mode)
    outside, operators, graph_inputs = _ops_outside_xnnpack(result.model_path)
    assert not [name for _, name, why in outside if why == "int8"], outside
    produced_outside = set(graph_inputs)
    for index, name, _ in outside:
        op = operators[index]
        fed_by = [t for t in op.inputs if t >= 0 and t not in produced_outside]
        producers = [o for o in operators if set(o.outputs) & set(fed_by)]
        assert not producers, f"{name} (op {index}) runs on a delegated op's output"
        produced_outside.update(op.outputs)
    assert {name for _, name, _ in outside} <= {"CAST", "ADD"}
    interpreter = Interpreter(model_path=result.model_path, num_threads=1)
    interpreter.allocate_tensors()  # The default XNNPACK delegate is applied here.
    partitions = sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())
    assert 1 <= partitions <= max_partitions


def test_bad_arguments(a0_stream, tmp_path):
    with pytest.raises(ValueError, match="quantize"):
        export_tflite(a0_stream, tmp_path / "m.tflite", image_size=32, quantize="int4")
    with pytest.raises(ValueError, match="5 classes"):
        export_tflite(a0_stream, tmp_path / "m.tflite", image_size=32, labels=["a", "b"])
    with pytest.raises(ValueError, match=".tflite"):
        export_tflite(a0_stream, tmp_path / "m.bin", image_size=32)
    base = movinet_tf.build_model("a0", stream=False, num_classes=3)
    with pytest.raises(ValueError, match="stream model"):
        export_tflite(base, tmp_path / "m.tflite", image_size=32)
    assert not os.listdir(tmp_path)  # nothing half-written
