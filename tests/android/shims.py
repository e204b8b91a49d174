"""Stand-ins for exporter features that other branches are building (coordinator: swap these).

* `_shim_add_input_contract` writes the manifest's ``input_contract`` key (schema in BRIEF.md),
  which the real exporter will write itself from the run config.
* `_shim_export_uint8` converts a full-integer model whose image input (and, as the TFLite
  converter applies ``inference_input_type`` to every float input, its states) is uint8,
  which the real exporter will offer as a quantize mode.

Both are used only by tests/android/conftest.py; keep them here, in one place, until the real
exporter replaces them.
"""
import json
import os
import shutil
import tempfile
import warnings

import numpy as np


def _shim_add_input_contract(manifest_path, *, frame_rate, min_image_size=None):
    """Adds ``input_contract`` to an exported manifest, from the manifest and the model.

    dtype and quantization come from the converted model's own image input tensor (as the
    schema requires), image_size from the manifest.
    """
    from ai_edge_litert.interpreter import Interpreter

    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    model_path = os.path.join(os.path.dirname(manifest_path), manifest["model_file"])
    image = Interpreter(model_path=model_path).get_signature_runner(
        manifest["signature"]).get_input_details()["image"]
    scale, zero_point = image["quantization"]
    height, width = manifest["image_size"]
    manifest["input_contract"] = {
        "frame_rate": frame_rate,
        "image_size": [height, width],
        "min_image_size": int(min_image_size or min(height, width)),
        "value_range": [0.0, 1.0],
        "channels": "RGB",
        "dtype": np.dtype(image["dtype"]).name,
        "quantization": ({"scale": float(scale), "zero_point": int(zero_point)}
                         if scale else None),
    }
    with open(manifest_path, "w", encoding="utf-8") as f:
        f.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _shim_export_uint8(model, output_path, *, image_size, labels):
    """Exports `model` like `export_tflite(..., quantize="int8")`, but full-integer with uint8
    inputs and outputs (TFLiteConverter ``inference_input_type=tf.uint8``), beside the same
    ``.labels.txt`` and ``.json`` files. Calibration: 2 clips of 8 builtin frames.
    """
    import tensorflow as tf

    from movinet_tf.export_lib import tflite_export, tflite_model
    from movinet_tf.export_lib.ensemble_graph import make_frame_graph

    graph = make_frame_graph(model, image_size)
    function = graph.signature_function("published")
    holder = tf.Module()
    holder.serve = function
    saved = tempfile.mkdtemp(prefix="shim_uint8_")
    try:
        tf.saved_model.save(holder, saved, signatures={
            tflite_model.SIGNATURE: function.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        videos = tflite_export.default_calibration_videos(graph.image_size, num_videos=2,
                                                          num_frames=8)
        names = ["image"] + graph.state_names

        def representative_dataset():
            for sample in tflite_export.calibration_samples(graph, videos, "published"):
                yield {name: sample[name] for name in names}

        converter.representative_dataset = representative_dataset
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
        with warnings.catch_warnings():
            # TensorFlow's calibrator builds the deprecated tf.lite.Interpreter internally.
            warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
            content = converter.convert()
    finally:
        shutil.rmtree(saved, ignore_errors=True)
    output_path = os.fspath(output_path)
    labels_path = tflite_model.labels_path_for(output_path)
    manifest_path = tflite_model.manifest_path_for(output_path)
    manifest = tflite_export.build_manifest(
        content, graph, layout="published", quantize="int8",
        model_file=os.path.basename(output_path), labels_file=os.path.basename(labels_path))
    with open(output_path, "wb") as f:
        f.write(content)
    with open(labels_path, "w", encoding="utf-8") as f:
        f.write("\n".join(labels) + "\n")
    with open(manifest_path, "w", encoding="utf-8") as f:
        f.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return {"tflite": output_path, "labels": labels_path, "manifest": manifest_path}
