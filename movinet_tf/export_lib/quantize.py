"""Reduced-precision TFLite: float16 arithmetic, int8 calibration, uint8 camera input.

`tflite_export.export_tflite` converts the single-frame graph; this module holds
what each quantize mode adds to that conversion:

* ``float16``: float16 weights (dequantized to float32 when the model loads).
* ``float16_arithmetic``: float16 weights, and the model's
  ``reduced_precision_support`` metadata says float16 arithmetic *and*
  accumulation are acceptable (``fp16accfp16``). LiteRT's XNNPACK delegate then
  runs the float graph in float16 on CPUs with native float16 arithmetic (ARMv8.2+
  phones); elsewhere it runs float32, as the ``float16`` file does. Inputs,
  outputs and states stay float32.
* ``int8`` / ``int8_uint8_input``: calibrated int8 with float islands
  (`quantize_int8`), optionally with a uint8 image input (`uint8_image_input`);
  the states the graph keeps in int8 cross its boundary in int8 (`int8_states`).
"""
import re

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from movinet_tf.export_lib.frame_graph import FLOAT_SCOPE, STEM_SCOPE

UINT8_INPUT_MODE = "int8_uint8_input"
FLOAT16_ARITHMETIC_MODE = "float16_arithmetic"
# Op types an int8 export keeps in float32. HARD_SWISH and DIV: the LiteRT XNNPACK
# delegate runs them in float but not in int8 (tests/export_lib/test_tflite_export.py
# checks the result with the interpreter itself). ADD: the residual sums, where two
# int8 inputs of different scales are requantized; in float32 the int8 file agrees
# with the float model on more frames at no measured cost in speed (docs/export.md).
FLOAT_OPS = ("HARD_SWISH", "DIV", "ADD")
# Blocks whose layers an int8 export keeps in float32: the first two stages, at the
# highest resolution, where int8's error counts most downstream (measured per layer on
# the trained quickstart model, docs/export.md), and the stem, whose 3-channel conv is
# slower in int8 than in float32 on CPUs without int8 dot products. FrameGraph runs
# the stem under STEM_SCOPE and each layer under its name scope (block0_layer0, ...).
FLOAT_BLOCKS = (STEM_SCOPE, "block0", "block1")


def _scope_pattern(scopes):
    # TensorFlow numbers repeated name scopes (float_island, float_island_1, ...), and a
    # converted tensor's name may join several op names with ';'.
    return re.compile(rf"(^|[;/])({'|'.join(scopes)})(_\d+)?/")


_FLOAT_SCOPE_NAME = _scope_pattern([FLOAT_SCOPE])


def in_float_scope(tensor_name, float_blocks=()):
    """Whether a converted tensor comes from a `FLOAT_SCOPE` op (any numbered copy),
    or from a layer of one of `float_blocks` (e.g. ``"block0"``)."""
    if _FLOAT_SCOPE_NAME.search(tensor_name):
        return True
    if not float_blocks:
        return False
    layers = [re.escape(block) if block == STEM_SCOPE else rf"{re.escape(block)}_layer\d+"
              for block in float_blocks]
    return bool(_scope_pattern(layers).search(tensor_name))


def use_float16_weights(converter, arithmetic=False):
    """Sets `converter` to write float16 weights; with `arithmetic`, float16 compute too.

    The converter then records ``reduced_precision_support`` = ``fp16accfp16``
    in the model's metadata (``fp16accfp32`` without `arithmetic`): the flag the
    XNNPACK delegate reads to run a float model in float16 where the CPU has it.
    The converter exposes the accumulation type only as a private attribute of
    its target spec; `tflite_model.reduced_precision` reads the result back from
    the flatbuffer, and the tests check it there.
    """
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    if arithmetic:
        converter.target_spec._experimental_supported_accumulation_type = tf.float16


def default_calibration_videos(image_size, num_videos=8, num_frames=16, seed=1000):
    """Calibration clips from the builtin synthetic set, rendered at `image_size`.

    Returns:
        list of float32 [num_frames, H, W, 3] in [0, 1].
    """
    from movinet_tf.data import builtin  # Deferred: only int8 export needs it.
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    videos = []
    for i in range(num_videos):
        frames = builtin.render_clip(i % len(builtin.CLASS_NAMES), seed + i,
                                     num_frames=num_frames, size=max(height, width, 16))
        frames = tf.image.resize(tf.cast(frames, tf.float32) / 255.0, (height, width))
        videos.append(np.clip(frames.numpy(), 0.0, 1.0).astype(np.float32))
    return videos


def as_float_video(video, image_size, where):
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or tuple(video.shape[1:3]) != tuple(image_size):
        raise ValueError(f"{where} must be [T, {image_size[0]}, {image_size[1]}, 3]; got shape "
                         f"{video.shape}.")
    if video.dtype == np.uint8:
        return video.astype(np.float32) / 255.0
    return video.astype(np.float32)


def calibration_samples(graph, videos, layout, samples_per_video=4, seed=0):
    """Representative inputs with realistic states, for int8 calibration.

    Streams each video through the float `graph` and yields, at frame 0 and at
    `samples_per_video - 1` random later frames, the inputs the model sees
    there: ``{"image": frame, **states}`` in `layout`.

    Args:
        graph: a `FrameGraph`.
        videos: float32 [T, H, W, 3] clips at the graph's image size.
        layout: 'published' or 'frame'.
        samples_per_video: frames sampled from each video (frame 0 included).
        seed: seeds the choice of the later frames.
    """
    step = tf.function(graph.__call__, autograph=False, reduce_retracing=True)
    published = graph.state_shapes("published")
    rng = np.random.default_rng(seed)
    for index, video in enumerate(videos):
        video = as_float_video(video, graph.image_size, f"calibration video {index}")
        frames = len(video)
        picks = {0} | set(rng.integers(1, max(frames, 2), size=samples_per_video - 1).tolist())
        states = graph.init_states("frame")
        for t in range(frames):
            if t in picks:
                sample = {"image": video[t].reshape(graph.image_shape(layout))}
                for name, value in states.items():
                    value = np.asarray(value)
                    if layout == "published":
                        value = value.reshape(published[name][0])
                    sample[name] = value
                yield sample
            _, states = step(tf.constant(video[t][None]), states)


def quantize_int8(converter, graph, input_names, layout, calibration_videos,
                  float_blocks=FLOAT_BLOCKS, seed=0):
    """Calibrates and quantizes to int8, keeping some ops in float32.

    * The `FLOAT_SCOPE` ops: the cumulative means, the 1 / (n + 1) weights from
      the frame counts, the positional encoding (a handful of [1, 1, 1, C]
      tensors, where float costs nothing and keeps the means from drifting).
    * The `FLOAT_OPS` types: HARD_SWISH and DIV, which XNNPACK does not run in
      int8 (in float it does, so the DEQUANTIZE -> op -> QUANTIZE stays inside
      one XNNPACK partition instead of cutting it at every op), and ADD.
    * Every layer of `float_blocks` (default `FLOAT_BLOCKS`: the stem and the
      first two stages).

    Selective quantization goes through TensorFlow's public `QuantizationDebugger`
    (``denylisted_nodes`` / ``denylisted_ops``).

    Args:
        converter: a `tf.lite.TFLiteConverter` of the graph's signatures.
        graph: the `FrameGraph` (or ensemble graph) being converted.
        input_names: dict signature key -> its input names (``image`` first).
        layout: the state layout of the signatures.
        calibration_videos: float32 [T, H, W, 3] clips; None: builtin clips.
        float_blocks: block names (``"block0"``, ...; ``STEM_SCOPE`` for the
            stem) whose layers stay float32; () quantizes every block.
        seed: seeds `calibration_samples`' choice of frames.

    Returns:
        The int8 flatbuffer bytes.
    """
    videos = calibration_videos
    if videos is None:
        videos = default_calibration_videos(graph.image_size)
    videos = list(videos)
    if not videos:
        raise ValueError("calibration_videos is empty; int8 needs at least one clip.")
    names = input_names
    keys = list(names)

    def representative_dataset():
        for sample in calibration_samples(graph, videos, layout, seed=seed):
            for key in keys:
                inputs = {name: sample[name] for name in names[key]}
                yield (key, inputs) if len(keys) > 1 else inputs

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=representative_dataset)
    calibrated = Interpreter(model_content=debugger.calibrated_model)
    keep_float = {detail["name"] for detail in calibrated.get_tensor_details()
                  if in_float_scope(detail["name"], float_blocks)}
    keep_float = sorted(keep_float)
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=keep_float, denylisted_ops=list(FLOAT_OPS))
    return debugger.get_nondebug_quantized_model()


def uint8_image_input(content):
    """Makes the image input uint8 with real = q / 255 (scale 1/255, zero point 0).

    Where the int8 model's float image input feeds exactly one QUANTIZE op (to int8),
    the input tensor becomes uint8 with that quantization, so the QUANTIZE turns
    into a uint8 -> int8 requantization. Where the graph reads the image in float
    (the stem kept float32, `FLOAT_BLOCKS`), a DEQUANTIZE at the front gives its
    readers q / 255. Either way a camera's bytes go in as they are. Only the image
    changes: the states keep their types.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    for signature in model.signatureDefs:
        entry = next((e for e in signature.inputs if e.name.decode() == "image"), None)
        if entry is None:
            raise ValueError("The int8 model has no 'image' input to make uint8.")
        graph = model.subgraphs[signature.subgraphIndex]
        consumers = [op for op in graph.operators if entry.tensorIndex in list(op.inputs)]
        names = [flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) for op in consumers]
        tensor = graph.tensors[entry.tensorIndex]
        if tensor.type != schema.TensorType.FLOAT32 or not names:
            raise ValueError("The image input of the int8 model is not a float32 input "
                             "the graph reads; cannot make it uint8.")
        if names != ["QUANTIZE"]:
            opcodes = _opcode_indices(flatbuffer_utils, model)
            if "DEQUANTIZE" not in opcodes:
                raise ValueError(f"The image input of the int8 model feeds {names} and the "
                                 "model has no DEQUANTIZE op to reuse; cannot make it uint8.")
            _front_dequantize(schema, graph, entry.tensorIndex, opcodes["DEQUANTIZE"])
        tensor.type = schema.TensorType.UINT8
        tensor.quantization = _quantization_params(schema, ((1.0 / 255.0,), (0,), 0))
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _quantization_key(tensor):
    """A tensor's quantization as a comparable tuple, or None where it has none."""
    params = tensor.quantization
    if params is None or params.scale is None or len(params.scale) == 0:
        return None
    return (tuple(np.asarray(params.scale, np.float32).tolist()),
            tuple(int(z) for z in params.zeroPoint), int(params.quantizedDimension))


def _quantization_params(schema, key):
    """The flatbuffer quantization of a `_quantization_key` tuple (its inverse)."""
    params = schema.QuantizationParametersT()
    scales, zero_points, axis = key
    params.scale, params.zeroPoint = list(scales), list(zero_points)
    params.quantizedDimension = axis
    return params


def int8_states(content):
    """Makes each state that the int8 graph stores in int8 cross the boundary in int8.

    In the calibrated file a stream buffer leaves the graph through a DEQUANTIZE (its
    frames are int8 inside) and comes back in float32, to be quantized again on the
    next frame by a QUANTIZE of the same scale. That round trip computes nothing: it
    turns int8 codes into floats and back, and makes the app copy four bytes per value
    instead of one. Here each state output produced by a DEQUANTIZE of an int8 tensor
    becomes that int8 tensor, and its input becomes int8 with the same scale and zero
    point:

    * where the input fed exactly one QUANTIZE to that scale, the QUANTIZE goes;
    * otherwise (the graph takes the state in float, e.g. a float32 stage's buffer) a
      DEQUANTIZE at the front of the graph gives it the float value it took before.

    Either way the signature computes bit for bit what it did, and an int8 state's
    output scale equals its input scale. Frame counts and the float means are unchanged.

    A state keeps one type and quantization in every signature that carries it. In an
    ensemble file, ``frame_mod_<i>`` stores member i's buffers in int8 as above, while
    ``serving_default`` hands them out of IF ops in float32: there the state is wrapped
    instead, a DEQUANTIZE at the front and a QUANTIZE (to the same scale) at the end.
    That re-rounds ``serving_default``'s states to ``frame_mod``'s int8 grid (they were
    calibrated apart); the per-member signatures, which `TFLiteStreamer` runs, stay
    exact.

    Returns:
        (the new flatbuffer bytes, the names of the states now int8).
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    opcodes = _opcode_indices(flatbuffer_utils, model)
    if "QUANTIZE" not in opcodes or "DEQUANTIZE" not in opcodes:
        return bytes(content), []

    def op_name(op):
        return flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)

    plans = {}  # state name -> [plan per signature that carries it; None where it cannot]
    for signature in model.signatureDefs:
        graph = model.subgraphs[signature.subgraphIndex]
        producers = {t: op for op in graph.operators for t in op.outputs}
        consumers = {}
        for op in graph.operators:
            for t in op.inputs:
                consumers.setdefault(t, []).append(op)
        inputs = {entry.name.decode(): entry for entry in signature.inputs}
        outputs = {entry.name.decode(): entry for entry in signature.outputs}
        for name in (set(inputs) | set(outputs)) - {"image", "logits"}:
            entry, out = inputs.get(name), outputs.get(name)
            plan = None
            if (entry is not None and out is not None and out.tensorIndex != entry.tensorIndex
                    and graph.tensors[entry.tensorIndex].type == schema.TensorType.FLOAT32
                    and graph.tensors[out.tensorIndex].type == schema.TensorType.FLOAT32):
                plan = {"graph": graph, "entry": entry, "out": out, "stored": None}
                dequantize = producers.get(out.tensorIndex)
                if (dequantize is not None and op_name(dequantize) == "DEQUANTIZE"
                        and graph.tensors[dequantize.inputs[0]].type == schema.TensorType.INT8
                        and not consumers.get(out.tensorIndex)):
                    stored = graph.tensors[dequantize.inputs[0]]
                    plan.update(dequantize=dequantize, stored=_quantization_key(stored))
                    users = consumers.get(entry.tensorIndex, [])
                    if len(users) == 1 and op_name(users[0]) == "QUANTIZE":
                        target = graph.tensors[users[0].outputs[0]]
                        if (target.type == schema.TensorType.INT8
                                and _quantization_key(target) == plan["stored"]):
                            plan["quantize"] = users[0]
            plans.setdefault(name, []).append(plan)
    converted = []
    for name, entries in sorted(plans.items()):
        if any(plan is None for plan in entries):
            continue
        stored = {plan["stored"] for plan in entries if plan["stored"] is not None}
        if len(stored) != 1:   # No signature stores it in int8, or two disagree.
            continue
        key, = stored
        for plan in entries:
            if plan["stored"] is not None:
                _store_in_int8(schema, plan)
            else:
                _wrap_in_int8(schema, plan, opcodes)
            params = _quantization_params(schema, key)
            state = plan["graph"].tensors[plan["entry"].tensorIndex]
            state.type = schema.TensorType.INT8
            state.quantization = params
            if plan["stored"] is None:
                plan["graph"].tensors[plan["out"].tensorIndex].quantization = params
        converted.append(name)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), converted


def _rewire(graph, old, new):
    """Every op that reads tensor `old` reads `new` instead."""
    for op in graph.operators:
        op.inputs = [new if t == old else t for t in op.inputs]


def _new_tensor(schema, graph, like, dtype, suffix):
    """Appends a tensor of `like`'s shape; returns its index."""
    tensor = schema.TensorT()
    tensor.shape = list(like.shape)
    tensor.shapeSignature = like.shapeSignature
    tensor.type = dtype
    tensor.buffer = 0
    name = like.name.decode() if isinstance(like.name, bytes) else like.name
    tensor.name = name + suffix
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _opcode_indices(flatbuffer_utils, model):
    """dict op name -> its index in the model's operator codes."""
    return {flatbuffer_utils.opcode_to_name(model, i): i for i in range(len(model.operatorCodes))}


def _front_dequantize(schema, graph, state, opcode):
    """The float readers of input `state` read a DEQUANTIZE of it, run first."""
    as_float = _new_tensor(schema, graph, graph.tensors[state], schema.TensorType.FLOAT32,
                           "/dequantized")
    _rewire(graph, state, as_float)
    front = schema.OperatorT()
    front.opcodeIndex = opcode
    front.inputs, front.outputs = [state], [as_float]
    graph.operators.insert(0, front)


def _store_in_int8(schema, plan):
    """The state's output is the int8 tensor the graph stores; its input feeds the graph
    directly (the QUANTIZE goes) or through a DEQUANTIZE at the front."""
    graph, entry, out, dequantize = plan["graph"], plan["entry"], plan["out"], plan["dequantize"]
    stored = dequantize.inputs[0]
    graph.operators.remove(dequantize)
    graph.outputs = [stored if t == out.tensorIndex else t for t in graph.outputs]
    out.tensorIndex = stored
    quantize = plan.get("quantize")
    if quantize is not None:
        graph.operators.remove(quantize)
        _rewire(graph, quantize.outputs[0], entry.tensorIndex)
    else:
        _front_dequantize(schema, graph, entry.tensorIndex, dequantize.opcodeIndex)


def _wrap_in_int8(schema, plan, opcodes):
    """A float state of a signature that does not store it in int8: DEQUANTIZE in front,
    QUANTIZE at the end (the caller sets both ends' quantization)."""
    graph, entry, out = plan["graph"], plan["entry"], plan["out"]
    _front_dequantize(schema, graph, entry.tensorIndex, opcodes["DEQUANTIZE"])
    as_int8 = _new_tensor(schema, graph, graph.tensors[out.tensorIndex],
                          schema.TensorType.INT8, "/quantized")
    end = schema.OperatorT()
    end.opcodeIndex = opcodes["QUANTIZE"]
    end.inputs, end.outputs = [out.tensorIndex], [as_int8]
    graph.operators.append(end)
    graph.outputs = [as_int8 if t == out.tensorIndex else t for t in graph.outputs]
    out.tensorIndex = as_int8
