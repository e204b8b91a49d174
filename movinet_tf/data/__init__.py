"""Video data pipelines: `(video, label)` batches from builtin, folder, csv, TFDS and TFRecords.

Example:
    cfg = DataConfig()                                  # the builtin quickstart set
    train = build_dataset(cfg, cfg.train_split, training=True)
    video, label = next(iter(train))                    # [8, 16, 56, 56, 3] float32, [8] int32
    names = class_names(cfg)                            # ['move_right', 'move_left', ...]
    contract = InputContract.from_data_config(cfg)      # 12.5 fps, 56x56 crop of short side 64
    for frame in VideoFrames("clip.mp4", target_fps=contract.frame_rate):
        model_input = preprocess_frame(frame.rgb, contract)   # float32 [56, 56, 3], one at a time

The names load on first use: the frame source, the contract and the config
(`frames`, `contract`, `config`, `video_io`) need OpenCV and numpy only, so the
TFLite streaming path never imports TensorFlow.
"""
from movinet_tf import lazy

_PUBLIC = {
    "BUILTIN_CLASS_NAMES": ("movinet_tf.data.builtin", "CLASS_NAMES"),
    "BUILTIN_FLIP_LABEL_MAP": ("movinet_tf.data.builtin", "FLIP_LABEL_MAP"),
    "ensure_builtin": ("movinet_tf.data.builtin", None),
    "render_clip": ("movinet_tf.data.builtin", None),
    "SOURCES": ("movinet_tf.data.config", None),
    "DataConfig": ("movinet_tf.data.config", None),
    "validate_config": ("movinet_tf.data.config", None),
    "InputContract": ("movinet_tf.data.contract", None),
    "VideoFrames": ("movinet_tf.data.frames", None),
    "preprocess_frame": ("movinet_tf.data.frames", None),
    "DecodeStats": ("movinet_tf.data.pipeline", None),
    "build_dataset": ("movinet_tf.data.pipeline", None),
    "class_names": ("movinet_tf.data.pipeline", None),
    "num_views": ("movinet_tf.data.pipeline", None),
    "preprocess_eval_frames": ("movinet_tf.data.preprocess", None),
    "encode_sequence_example": ("movinet_tf.data.tfrecord", None),
    "write_tfrecord": ("movinet_tf.data.tfrecord", None),
    "VideoDecodeError": ("movinet_tf.data.video_io", None),
    "read_clip_frames": ("movinet_tf.data.video_io", None),
    "read_video": ("movinet_tf.data.video_io", None),
    "write_video": ("movinet_tf.data.video_io", None),
}
__getattr__, __dir__, __all__ = lazy.attach(__name__, _PUBLIC)
