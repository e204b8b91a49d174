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
import importlib

_PUBLIC = {
    "FrameGraph": "movinet_tf.export_lib.frame_graph",
    "LoadedModel": "movinet_tf.export_lib.loading",
    "load_model": "movinet_tf.export_lib.loading",
    "export_saved_model": "movinet_tf.export_lib.saved_model_export",
    "QUANTIZE_MODES": "movinet_tf.export_lib.tflite_export",
    "TFLiteExportResult": "movinet_tf.export_lib.tflite_export",
    "compare_with_float": "movinet_tf.export_lib.tflite_export",
    "default_calibration_videos": "movinet_tf.export_lib.tflite_export",
    "export_tflite": "movinet_tf.export_lib.tflite_export",
    "TFLiteStreamer": "movinet_tf.export_lib.tflite_model",
    "op_counts": "movinet_tf.export_lib.tflite_model",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'movinet_tf.export_lib' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
