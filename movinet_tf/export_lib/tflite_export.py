"""Export of a stream MoViNet to a single-frame streaming TFLite model.

`export_tflite` writes three files next to each other, each atomically:

* ``model.tflite``: signature ``serving_default``; inputs ``image``
  (float32 [1, 1, H, W, 3] in [0, 1]; uint8 for 'int8_uint8_input') plus every
  state by its published name; outputs ``logits`` (float32 [1, num_classes])
  plus the new states under the same names. Builtin TFLite ops only. An
  ensemble file also has one signature per member (``frame_mod_<i>``, listed in
  the manifest's ``frame_signatures``; see `frame_signatures`).
* ``model.labels.txt``: one class name per line, in class-index order.
* ``model.json``: the manifest (see docs/export.md): every input and output
  tensor with its signature name, interpreter tensor index, shape, dtype and
  quantization, and the state pairing, so that a runtime without the
  signature API can bind states by index.

The graph is the folded single-frame `FrameGraph`, not the Keras model itself.
"""
import dataclasses
import json
import os
import shutil
import tempfile
import warnings

import numpy as np
import tensorflow as tf
from absl import logging
from ai_edge_litert.interpreter import Interpreter

from movinet_tf import atomic_io
from movinet_tf.data.contract import InputContract
from movinet_tf.export_lib import quantize as quantize_lib
from movinet_tf.export_lib import litert_runners, tflite_model
from movinet_tf.export_lib.ensemble_graph import (EnsembleFrameGraph, frame_signature_name,
                                                  make_frame_graph)
# default_calibration_videos is re-exported: callers import it from here.
from movinet_tf.export_lib.quantize import (FLOAT16_ARITHMETIC_MODE, UINT8_INPUT_MODE,  # noqa: F401
                                            default_calibration_videos)

QUANTIZE_MODES = ("none", "float16", FLOAT16_ARITHMETIC_MODE, "dynamic", "int8",
                  UINT8_INPUT_MODE)
MANIFEST_FORMAT = "movinet_tf.stream_tflite"
MANIFEST_VERSION = 1


@dataclasses.dataclass
class TFLiteExportResult:
    """What `export_tflite` wrote.

    Attributes:
        model_path, labels_path, manifest_path: the three files.
        manifest: the manifest as a dict.
        num_states: number of state tensors.
        state_bytes: total bytes of the state tensors (one direction).
        size_bytes: size of the .tflite file.
        op_counts: dict op name -> count.
    """
    model_path: str
    labels_path: str
    manifest_path: str
    manifest: dict
    num_states: int
    state_bytes: int
    size_bytes: int
    op_counts: dict


def _atomic_write_bytes(path, data):
    atomic_io.write_bytes(path, data)  # Renamed into place, with the umask's mode.


def _check_labels(labels, num_classes):
    if labels is None:
        return [f"class_{i}" for i in range(num_classes)]
    labels = [str(label) for label in labels]
    if len(labels) != num_classes:
        raise ValueError(f"labels has {len(labels)} names; the model has {num_classes} classes.")
    bad = [label for label in labels if not label or "\n" in label]
    if bad:
        raise ValueError(f"labels must be non-empty single-line names; got {bad[:3]!r}.")
    return labels


def _signature_functions(graph, layout):
    """dict signature key -> tf.function: ``serving_default``, plus one per ensemble member."""
    functions = {tflite_model.SIGNATURE: graph.signature_function(layout)}
    if isinstance(graph, EnsembleFrameGraph):
        for index in range(graph.num_members):
            functions[frame_signature_name(index)] = graph.member_signature_function(index, layout)
    return functions


def _signature_inputs(graph, key):
    """Input names of signature `key` (``image`` first)."""
    if key == tflite_model.SIGNATURE:
        return ["image"] + graph.state_names
    index = next(i for i in range(graph.num_members) if frame_signature_name(i) == key)
    return ["image"] + graph.member_state_names(index)


def _convert(graph, layout, quantize, calibration_videos, int8_states=True, calibration_seed=0):
    """Converts `graph` through a temporary SavedModel; returns the flatbuffer bytes."""
    functions = _signature_functions(graph, layout)
    holder = tf.Module()
    holder.functions = list(functions.values())
    tmp_dir = tempfile.mkdtemp(prefix="movinet_tflite_")
    try:
        tf.saved_model.save(holder, tmp_dir, signatures={
            key: function.get_concrete_function() for key, function in functions.items()})
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp_dir, list(functions))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        with warnings.catch_warnings():
            # int8 calibration runs TensorFlow's own calibrator, which still builds the
            # deprecated tf.lite.Interpreter internally; our code runs LiteRT.
            warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
            if quantize in ("float16", FLOAT16_ARITHMETIC_MODE):
                quantize_lib.use_float16_weights(
                    converter, arithmetic=quantize == FLOAT16_ARITHMETIC_MODE)
            elif quantize == "dynamic":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            elif quantize in ("int8", UINT8_INPUT_MODE):
                names = {key: _signature_inputs(graph, key) for key in functions}
                content = quantize_lib.quantize_int8(converter, graph, names, layout,
                                                     calibration_videos, seed=calibration_seed)
                if quantize == UINT8_INPUT_MODE:
                    content = quantize_lib.uint8_image_input(content)
                if int8_states:
                    content, converted = quantize_lib.int8_states(content)
                    logging.info("%d states cross the boundary in int8.", len(converted))
                return content
            return converter.convert()
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _tensor_entry(name, detail):
    scale, zero_point = detail.get("quantization", (0.0, 0))
    entry = {
        "name": name,
        "index": int(detail["index"]),
        "shape": [int(d) for d in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "quantization": None,
    }
    if scale:
        entry["quantization"] = {"scale": float(scale), "zero_point": int(zero_point)}
    return entry


def build_manifest(model_content, graph, *, layout, quantize, model_file, labels_file,
                   model_id=None, min_image_size=None, contract=None):
    """The manifest dict of a converted model (read back from the interpreter).

    ``input_contract`` is `contract` (an `InputContract`; None: the graph's
    sizes and `min_image_size`, frame rate unknown) with the dtype and
    quantization of the converted model's own image input tensor.
    """
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=model_content)
    runner = interpreter.get_signature_runner(tflite_model.SIGNATURE)
    in_details = runner.get_input_details()
    out_details = runner.get_output_details()
    names = graph.state_names
    expected_in = {"image", *names}
    expected_out = {"logits", *names}
    if set(in_details) != expected_in or set(out_details) != expected_out:
        raise ValueError(
            "The converted model's signature does not match the graph: inputs "
            f"{sorted(set(in_details) ^ expected_in)} / outputs "
            f"{sorted(set(out_details) ^ expected_out)} differ.")
    published = graph.state_shapes("published")
    inputs = [_tensor_entry("image", in_details["image"])]
    outputs = [_tensor_entry("logits", out_details["logits"])]
    states = []
    total_bytes = 0
    for name in names:
        state_in = _tensor_entry(name, in_details[name])
        state_out = _tensor_entry(name, out_details[name])
        if state_in["shape"] != state_out["shape"] or state_in["dtype"] != state_out["dtype"]:
            raise ValueError(f"State {name!r} enters as {state_in['shape']} {state_in['dtype']} "
                             f"but leaves as {state_out['shape']} {state_out['dtype']}.")
        inputs.append(state_in)
        outputs.append(state_out)
        nbytes = int(np.prod(state_in["shape"])) * np.dtype(state_in["dtype"]).itemsize
        total_bytes += nbytes
        states.append({
            "name": name,
            "input_index": state_in["index"],
            "output_index": state_out["index"],
            "shape": state_in["shape"],
            "published_shape": list(published[name][0]),
            "dtype": state_in["dtype"],
            "bytes": nbytes,
        })
    height, width = graph.image_size
    if contract is None:
        contract = InputContract(frame_rate=None, image_size=(height, width),
                                 min_image_size=int(min_image_size or max(height, width)))
    if tuple(contract.image_size) != (height, width):
        raise ValueError(f"contract image_size {list(contract.image_size)} differs from the "
                         f"exported frame size {[height, width]}.")
    contract = contract.with_tensor(*tflite_model.image_tensor_contract(in_details["image"]))
    min_image_size = contract.min_image_size
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "model_file": model_file,
        "labels_file": labels_file,
        "signature": tflite_model.SIGNATURE,
        "model_id": model_id,
        "num_classes": graph.num_classes,
        "image_size": [height, width],
        "min_image_size": min_image_size,
        "image_input": {"value_range": [0.0, 1.0], "channels": "RGB"},
        "state_layout": layout,
        "quantization": quantize,
        "num_states": len(states),
        "state_bytes": total_bytes,
        "inputs": inputs,
        "outputs": outputs,
        "states": states,
        "input_contract": contract.to_dict(),
    }


def export_tflite(model, output_path, *, image_size, quantize="none", labels=None,
                  calibration_videos=None, gpu_compatible_states=False, min_image_size=None,
                  contract=None, int8_states=True, calibration_seed=0):
    """Exports a stream model as a single-frame streaming TFLite model.

    Args:
        model: a stream `MovinetClassifier` (float32), or a `TemporalEnsemble` of
            them: one file in which frame t runs member t mod N only.
        output_path: the .tflite path; ``.labels.txt`` and ``.json`` files are
            written beside it (same stem).
        image_size: frame side (int) or (H, W).
        quantize: 'none' (float32), 'float16' (float16 weights),
            'float16_arithmetic' (float16 weights, and metadata that lets
            XNNPACK compute in float16 where the CPU has float16 arithmetic;
            float32 inputs, outputs and states), 'dynamic'
            (int8 weights, float activations), 'int8' (int8 weights and
            activations, calibrated; float inputs and outputs; the cumulative
            means, hard-swish, the residual ADDs, the stem and the first two
            stages stay float32, see `quantize.quantize_int8`) or 'int8_uint8_input' (the same, with a uint8
            image input for cameras: real = q / 255, scale 1/255, zero point 0).
        labels: class names, one per class; None writes ``class_<i>``.
        calibration_videos: for int8: float32 (or uint8) [T, H, W, 3] clips at
            `image_size`; None renders clips of the builtin synthetic set.
        gpu_compatible_states: every input/output at most 4-D: image
            [1, H, W, 3], stream buffers [kt - 1, H, W, C], pool buffers
            [1, 1, 1, C]; frame counts stay (1,).
        min_image_size: the short side to resize to before the centre crop,
            recorded in the manifest for apps (None: not recorded).
        contract: the `InputContract` the model was trained with (frame rate,
            sizes, value range), written as the manifest's ``input_contract``;
            its sizes win over `min_image_size`. None: ``model.input_contract``
            (set by `load_model`), else the frame rate is unknown.
        int8_states: for the int8 modes, every state the graph stores in int8
            (the stream buffers, the head's mean) enters and leaves in int8, at
            one scale and zero point, recorded in the manifest
            (`quantize.int8_states`); False keeps them float32: the same logits,
            four times the bytes to copy per frame.
        calibration_seed: for int8: seeds the choice of the frames sampled from
            each calibration video (frame 0 and 3 random later ones).

    Returns:
        A `TFLiteExportResult`.

    Raises:
        ValueError: for a base model, an unknown `quantize` mode, labels of the
            wrong length, or calibration clips of the wrong size.
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"Unknown quantize mode {quantize!r}; expected one of {QUANTIZE_MODES}.")
    output_path = os.fspath(output_path)
    if not output_path.endswith(".tflite"):
        raise ValueError(f"output_path must end with .tflite; got {output_path!r}.")
    labels = _check_labels(labels, model.num_classes)
    graph = make_frame_graph(model, image_size)
    if contract is None and getattr(model, "input_contract", None) is not None:
        # A model from `load_model` carries its training contract.
        contract = model.input_contract.at_image_size(graph.image_size)
    layout = "frame" if gpu_compatible_states else "published"
    logging.info("Converting %s to TFLite (%s, %s states, %dx%d).", model.name, quantize, layout,
                 *graph.image_size)
    content = _convert(graph, layout, quantize, calibration_videos, int8_states,
                       calibration_seed)
    counts = tflite_model.op_counts(content)
    custom = sorted(name for name in counts if name.startswith("CUSTOM"))
    if custom:
        raise ValueError(f"The converted model uses non-builtin ops {custom}; it would need "
                         "Flex/Select-TF ops.")
    labels_path = tflite_model.labels_path_for(output_path)
    manifest_path = tflite_model.manifest_path_for(output_path)
    manifest = build_manifest(
        content, graph, layout=layout, quantize=quantize,
        model_file=os.path.basename(output_path), labels_file=os.path.basename(labels_path),
        model_id=getattr(model, "model_id", None), min_image_size=min_image_size,
        contract=contract)
    if isinstance(graph, EnsembleFrameGraph):
        manifest["frame_signatures"] = frame_signatures(content, graph)
    _atomic_write_bytes(labels_path, ("\n".join(labels) + "\n").encode("utf-8"))
    _atomic_write_bytes(manifest_path,
                        (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    _atomic_write_bytes(output_path, content)
    logging.info("Wrote %s (%.2f MB): %d states, %d bytes of state.", output_path,
                 len(content) / 1e6, manifest["num_states"], manifest["state_bytes"])
    return TFLiteExportResult(
        model_path=output_path, labels_path=labels_path, manifest_path=manifest_path,
        manifest=manifest, num_states=manifest["num_states"], state_bytes=manifest["state_bytes"],
        size_bytes=len(content), op_counts=dict(counts))


def frame_signatures(model_content, graph):
    """The manifest's ``frame_signatures`` of an ensemble file, read from the model.

    Frame t is served by signature ``frame_signatures[t % N]["signature"]``: call
    it with ``image`` and the states named in ``input_states``, then replace the
    states named in ``output_states`` with its outputs (``logits`` is the
    ensemble's prediction). The other states are not touched that frame. Each entry
    also gives the interpreter tensor index of every input and output, as the
    manifest's ``inputs`` / ``outputs`` do.
    """
    interpreter = Interpreter(model_content=model_content)
    entries = []
    for index in range(graph.num_members):
        key = frame_signature_name(index)
        runner = interpreter.get_signature_runner(key)
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        reads = graph.member_state_names(index)
        writes = graph.member_state_names(index, outputs=True)
        entries.append({
            "signature": key,
            "member": index,
            "input_states": reads,
            "output_states": writes,
            "inputs": [_tensor_entry(name, inputs[name]) for name in ["image"] + reads],
            "outputs": [_tensor_entry(name, outputs[name]) for name in ["logits"] + writes],
        })
    return entries


def compare_with_float(model, tflite_path, videos, image_size=None, num_threads=1,
                       force_fp16=False):
    """Streams clips through a TFLite model and the float graph; measures agreement.

    Args:
        model: the float stream model the TFLite model was exported from.
        tflite_path: the exported model.
        videos: float32 [T, H, W, 3] clips in [0, 1] (held out from calibration). For
            a uint8-input model each frame is quantized to its bytes first, and the
            float graph sees the same bytes.
        image_size: defaults to the TFLite model's.
        force_fp16: run the TFLite model with XNNPACK's float16 arithmetic forced
            (`litert_runners.CompiledRunner`): what a ``float16_arithmetic`` model
            computes on a CPU with float16 arithmetic.

    Returns:
        dict with ``top1_agreement_final`` (fraction of clips whose top-1 after the
        last frame matches), ``top1_agreement_frames`` (over every frame of every
        clip), ``max_logit_error`` and ``mean_logit_error`` (abs, over every
        frame), ``num_clips`` and ``num_frames``.
    """
    if force_fp16:
        runner = litert_runners.CompiledRunner(tflite_path, num_threads, force_fp16=True)
    else:
        runner = Interpreter(model_path=os.fspath(tflite_path), num_threads=num_threads
                             ).get_signature_runner(tflite_model.SIGNATURE)
    details = runner.get_input_details()
    image = details["image"]
    graph = make_frame_graph(model, image_size or tuple(int(d) for d in image["shape"][-3:-1]))
    step = tf.function(graph.__call__, autograph=False, reduce_retracing=True)
    final_agree, frame_agree, errors = [], [], []
    for index, video in enumerate(videos):
        video = quantize_lib.as_float_video(video, graph.image_size, f"video {index}")
        if image["dtype"] == np.uint8:
            # A camera model: the bytes are what it sees, so the float graph gets them too.
            scale, zero_point = image["quantization"]
            quantized = np.clip(np.round(video / scale + zero_point), 0, 255).astype(np.uint8)
            video = ((quantized.astype(np.float32) - zero_point) * scale).astype(np.float32)
        else:
            quantized = video
        states = graph.init_states("frame")
        tflite_states = tflite_model.zero_states(details)
        for frame, frame_in in zip(video, quantized):
            reference, states = step(tf.constant(frame[None]), states)
            reference = reference.numpy()[0]
            outputs = runner(image=frame_in.reshape(image["shape"]), **tflite_states)
            got = np.asarray(outputs.pop("logits"), np.float32).reshape(-1)
            tflite_states = outputs
            errors.append(np.abs(got - reference))
            frame_agree.append(np.argmax(got) == np.argmax(reference))
        final_agree.append(frame_agree[-1])
    errors = np.stack(errors)
    return {
        "num_clips": len(final_agree),
        "num_frames": len(frame_agree),
        "top1_agreement_final": float(np.mean(final_agree)),
        "top1_agreement_frames": float(np.mean(frame_agree)),
        "max_logit_error": float(errors.max()),
        "mean_logit_error": float(errors.mean()),
    }
