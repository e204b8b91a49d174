"""Video data pipelines: `(video, label)` batches from builtin, folder, csv, TFDS and TFRecords.

Example:
    cfg = DataConfig()                                  # the builtin quickstart set
    train = build_dataset(cfg, cfg.train_split, training=True)
    video, label = next(iter(train))                    # [8, 16, 56, 56, 3] float32, [8] int32
    names = class_names(cfg)                            # ['move_right', 'move_left', ...]
    frames, fps = read_video("clip.mp4")                # uint8 [T, H, W, 3] RGB
    model_input = preprocess_eval_frames(frames, 56, 64)  # float32 [T, 56, 56, 3]
"""
from movinet_tf.data.builtin import CLASS_NAMES as BUILTIN_CLASS_NAMES
from movinet_tf.data.builtin import FLIP_LABEL_MAP as BUILTIN_FLIP_LABEL_MAP
from movinet_tf.data.builtin import ensure_builtin, render_clip
from movinet_tf.data.config import SOURCES, DataConfig, validate_config
from movinet_tf.data.pipeline import DecodeStats, build_dataset, class_names, num_views
from movinet_tf.data.preprocess import preprocess_eval_frames
from movinet_tf.data.tfrecord import encode_sequence_example, write_tfrecord
from movinet_tf.data.video_io import VideoDecodeError, read_video, write_video

__all__ = ["BUILTIN_CLASS_NAMES", "BUILTIN_FLIP_LABEL_MAP", "DataConfig", "DecodeStats",
           "SOURCES", "VideoDecodeError", "build_dataset", "class_names", "encode_sequence_example",
           "ensure_builtin", "num_views", "preprocess_eval_frames", "read_video", "render_clip",
           "validate_config", "write_tfrecord", "write_video"]
