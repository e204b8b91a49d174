"""Export and serving: SavedModel, single-frame streaming TFLite, quantization.

Example:
    from movinet_tf import export_lib
    export_lib.export_saved_model(model, "/tmp/movinet_sm", labels=names)
    result = export_lib.export_tflite(model, "/tmp/movinet.tflite", image_size=172,
                                      quantize="none", labels=names)
    streamer = export_lib.TFLiteStreamer("/tmp/movinet.tflite")
"""
from movinet_tf.export_lib.frame_graph import FrameGraph
from movinet_tf.export_lib.loading import LoadedModel, load_model
from movinet_tf.export_lib.saved_model_export import export_saved_model
from movinet_tf.export_lib.tflite_export import (QUANTIZE_MODES, TFLiteExportResult,
                                                 compare_with_float, default_calibration_videos,
                                                 export_tflite)
from movinet_tf.export_lib.tflite_model import TFLiteStreamer, op_counts

__all__ = ["FrameGraph", "LoadedModel", "QUANTIZE_MODES", "TFLiteExportResult", "TFLiteStreamer",
           "compare_with_float", "default_calibration_videos", "export_saved_model",
           "export_tflite", "load_model", "op_counts"]
