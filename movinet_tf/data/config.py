"""`DataConfig`: the ``data:`` section of an experiment, one typed field per knob.

The defaults are the quickstart: the builtin synthetic action set (10 classes,
48-frame 64x64 mp4 videos), sampled as 16 frames at stride 2 and fed to the
model at 56x56. Every other source only needs ``source``, ``path`` and
``num_classes`` changed (plus the clip geometry of the recipe you follow).
"""
import dataclasses

SOURCES = ("builtin", "folder", "csv", "tfds", "tfrecord")


def _choices(*values):
    return {"choices": tuple(values)}


@dataclasses.dataclass
class DataConfig:
    """How to read, sample and augment videos into `(video, label)` batches.

    Attributes:
        source: where videos come from: ``builtin`` (generated synthetic set),
            ``folder`` (``root/[split/]<class>/<video>``), ``csv`` (rows of
            ``path,label``), ``tfds`` (a prepared TFDS dataset) or ``tfrecord``
            (Kinetics-style SequenceExamples).
        path: builtin: dataset folder ('' = the cache); folder: root folder;
            csv: the csv file; tfrecord: a file glob; tfds: the ``data_dir``
            ('' = the TFDS default). A literal ``{split}`` in it is replaced by
            the split name, e.g. ``lists/{split}.csv``.
        tfds_name: TFDS dataset name, e.g. ``ucf101`` or ``kinetics600``.
        tfds_video_key: feature holding the uint8 video ``[T, H, W, 3]``.
        tfds_label_key: feature holding the integer label.
        num_classes: number of classes; checked against the source.
        train_split: split name used for training.
        eval_split: split name used for evaluation.
        val_fraction: for folder/csv sources without their own split, the share
            of videos (by a stable hash of the path) that goes to `eval_split`.
        num_frames: frames per clip, T.
        video_fps: frame rate of the source videos (the builtin set is 25 fps).
            The model is trained at ``video_fps / temporal_stride`` frames per
            second, and every export records that rate in its input contract
            (`movinet_tf.data.contract`), so streaming feeds it the same rate.
        temporal_stride: distance in source frames between sampled frames.
        random_stride_range: training only: r > 0 draws the stride uniformly
            from ``[max(temporal_stride - r, 1), temporal_stride + r)``.
        interleave_count: N >= 1. With N > 1 the clip is one of N interleaved
            clips (temporal-ensemble members): the pipeline places a full-rate
            clip of ``num_frames * N`` frames at ``temporal_stride / N`` (same
            start, random or not, and same crop) and keeps its frames
            ``interleave_index, interleave_index + N, ...``. So the clip is
            `num_frames` frames at `temporal_stride`, shifted by
            ``interleave_index * temporal_stride / N`` source frames, and the N
            clips of one video split the same full-rate clip. With r > 0, the
            random stride is drawn for the full-rate clip.
        interleave_index: which of the N interleaved clips, in ``[0, N)``.
        image_size: output height and width, H = W.
        min_image_size: eval: the short side is resized to this, then the
            centre (or left/centre/right) `image_size` square is cropped.
        crop_area_min: train: smallest area share of the random crop.
        crop_area_max: train: largest area share of the random crop.
        crop_aspect_min: train: smallest width/height ratio of the random crop.
        crop_aspect_max: train: largest width/height ratio of the random crop.
        random_flip: train: flip clips horizontally with probability 1/2. The
            builtin set swaps the labels that a flip swaps (left/right,
            clockwise/counter-clockwise); for your own direction-sensitive
            classes, turn it off.
        batch_size: training batch size (the last partial batch is dropped).
        eval_batch_size: evaluation batch size (the last batch is kept).
        shuffle_buffer: shuffle buffer of record sources (tfds, tfrecord). File
            sources shuffle their whole file list each epoch instead.
        eval_num_clips: evaluation clips per video, evenly spaced in time.
        eval_num_crops: evaluation crops per clip: 1 (centre) or 3 (left,
            centre, right along the long side).
        seed: seeds shuffling and augmentation.
        num_parallel_calls: decode/augment parallelism; -1 = tf.data AUTOTUNE.
        builtin_train_per_class: builtin: training videos per class.
        builtin_val_per_class: builtin: validation videos per class.
        builtin_video_frames: builtin: frames per generated video.
        builtin_video_size: builtin: height and width of generated videos.
        builtin_seed: builtin: seed of the generator (a different seed is a
            different dataset, cached separately).
    """
    source: str = dataclasses.field(default="builtin", metadata=_choices(*SOURCES))
    path: str = ""
    tfds_name: str = ""
    tfds_video_key: str = "video"
    tfds_label_key: str = "label"
    num_classes: int = 10
    train_split: str = "train"
    eval_split: str = "val"
    val_fraction: float = 0.2
    num_frames: int = 16
    video_fps: float = 25.0
    temporal_stride: int = 2
    random_stride_range: int = 0
    interleave_count: int = 1
    interleave_index: int = 0
    image_size: int = 56
    min_image_size: int = 64
    crop_area_min: float = 0.08
    crop_area_max: float = 1.0
    crop_aspect_min: float = 0.5
    crop_aspect_max: float = 2.0
    random_flip: bool = True
    batch_size: int = 8
    eval_batch_size: int = 8
    shuffle_buffer: int = 256
    eval_num_clips: int = 1
    eval_num_crops: int = dataclasses.field(default=1, metadata=_choices(1, 3))
    seed: int = 0
    num_parallel_calls: int = -1
    builtin_train_per_class: int = 60
    builtin_val_per_class: int = 15
    builtin_video_frames: int = 48
    builtin_video_size: int = 64
    builtin_seed: int = 0


def validate_config(cfg):
    """Checks that the fields of `cfg` are consistent; returns `cfg`.

    Raises:
        TypeError: if `cfg` is not a `DataConfig`.
        ValueError: naming the first offending field and what was expected.
    """
    if not isinstance(cfg, DataConfig):
        raise TypeError(f"Expected a DataConfig, got {type(cfg).__name__}.")
    if cfg.source not in SOURCES:
        raise ValueError(f"data.source is {cfg.source!r}; expected one of {list(SOURCES)}.")
    positive = ("num_classes", "num_frames", "temporal_stride", "image_size", "min_image_size",
                "batch_size", "eval_batch_size", "shuffle_buffer", "eval_num_clips",
                "builtin_video_frames", "builtin_video_size")
    for name in positive:
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"data.{name} is {value!r}; expected an integer >= 1.")
    for name in ("random_stride_range", "builtin_train_per_class", "builtin_val_per_class"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"data.{name} is {value!r}; expected an integer >= 0.")
    for name in ("interleave_count", "interleave_index"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"data.{name} is {value!r}; expected an integer.")
    if cfg.interleave_count < 1 or not 0 <= cfg.interleave_index < cfg.interleave_count:
        raise ValueError(f"data.interleave_index ({cfg.interleave_index}) and "
                         f"data.interleave_count ({cfg.interleave_count}): expected count >= 1 "
                         "and 0 <= index < count.")
    if cfg.temporal_stride % cfg.interleave_count:
        raise ValueError(f"data.temporal_stride ({cfg.temporal_stride}) must be a multiple of "
                         f"data.interleave_count ({cfg.interleave_count}): the full-rate clip "
                         "has stride temporal_stride / interleave_count.")
    if (isinstance(cfg.video_fps, bool) or not isinstance(cfg.video_fps, (int, float))
            or not 0.0 < cfg.video_fps <= 1000.0):
        raise ValueError(f"data.video_fps is {cfg.video_fps!r}; expected frames per second in "
                         "(0, 1000].")
    if cfg.min_image_size < cfg.image_size:
        raise ValueError(f"data.min_image_size ({cfg.min_image_size}) must be >= data.image_size "
                         f"({cfg.image_size}): eval crops image_size out of the resized frame.")
    if cfg.eval_num_crops not in (1, 3):
        raise ValueError(f"data.eval_num_crops is {cfg.eval_num_crops!r}; expected 1 or 3.")
    if not 0.0 < cfg.crop_area_min <= cfg.crop_area_max <= 1.0:
        raise ValueError(f"data.crop_area_min/max are ({cfg.crop_area_min}, {cfg.crop_area_max}); "
                         "expected 0 < min <= max <= 1.")
    if not 0.0 < cfg.crop_aspect_min <= cfg.crop_aspect_max:
        raise ValueError(f"data.crop_aspect_min/max are ({cfg.crop_aspect_min}, "
                         f"{cfg.crop_aspect_max}); expected 0 < min <= max.")
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise ValueError(f"data.val_fraction is {cfg.val_fraction!r}; expected 0 <= value < 1.")
    if cfg.num_parallel_calls != -1 and cfg.num_parallel_calls < 1:
        raise ValueError(f"data.num_parallel_calls is {cfg.num_parallel_calls!r}; "
                         "expected -1 (AUTOTUNE) or an integer >= 1.")
    if cfg.source == "tfds" and not cfg.tfds_name:
        raise ValueError("data.source is 'tfds' but data.tfds_name is empty; "
                         "expected a TFDS name such as 'ucf101'.")
    if cfg.source in ("folder", "csv", "tfrecord") and not cfg.path:
        raise ValueError(f"data.source is {cfg.source!r} but data.path is empty; expected "
                         + {"folder": "the root folder.", "csv": "the csv file.",
                            "tfrecord": "a TFRecord file glob."}[cfg.source])
    return cfg
