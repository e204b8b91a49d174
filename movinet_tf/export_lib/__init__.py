"""Export and serving: SavedModel, single-frame streaming TFLite, quantization.

Example:
    from movinet_tf import export_lib
    export_lib.export_saved_model(model, "/tmp/movinet_sm", labels=names)
    result = export_lib.export_tflite(model, "/tmp/movinet.tflite", image_size=172,
                                      quantize="none", labels=names)
    streamer = export_lib.TFLiteStreamer("/tmp/movinet.tflite")

The names load on first use, so that ``from movinet_tf.export_lib import
TFLiteStreamer`` runs on LiteRT alone and never imports TensorFlow.
"""
from movinet_tf import lazy

_PUBLIC = {
    "FrameGraph": "movinet_tf.export_lib.frame_graph",
    "LoadedModel": "movinet_tf.export_lib.loading",
    "load_model": "movinet_tf.export_lib.loading",
    "export_saved_model": "movinet_tf.export_lib.saved_model_export",
    "QUANTIZE_MODES": "movinet_tf.export_lib.tflite_export",
    "TFLiteExportResult": "movinet_tf.export_lib.tflite_export",
    "compare_with_float": "movinet_tf.export_lib.tflite_export",
    "default_calibration_videos": "movinet_tf.export_lib.quantize",
    "export_tflite": "movinet_tf.export_lib.tflite_export",
    "TFLiteStreamer": "movinet_tf.export_lib.tflite_model",
    "op_counts": "movinet_tf.export_lib.tflite_model",
    "reduced_precision": "movinet_tf.export_lib.tflite_model",
    "zero_states": "movinet_tf.export_lib.tflite_model",
    "CompiledRunner": "movinet_tf.export_lib.litert_runners",
}
__getattr__, __dir__, __all__ = lazy.attach(__name__, _PUBLIC)
