"""Prepared TFDS video datasets (``ucf101``, ``kinetics600``, ...), read without downloading.

The dataset must already be prepared under ``data.path`` (the TFDS
``data_dir``; '' = the TFDS default ``~/tensorflow_datasets``). Each example
needs a uint8 video feature `[T, H, W, 3]` (``data.tfds_video_key``) and an
integer label (``data.tfds_label_key``); a config is selected with
``name/config``, e.g. ``ucf101/ucf101_1_256``.
"""
import tensorflow as tf
import tensorflow_datasets as tfds


def _builder(cfg):
    try:
        return tfds.builder(cfg.tfds_name, data_dir=cfg.path or None)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(f"data.tfds_name {cfg.tfds_name!r} is not a TFDS dataset: {error}") \
            from error


def class_names(cfg):
    """Names of the label feature (``"0" .. "N-1"`` when it has none)."""
    feature = _builder(cfg).info.features[cfg.tfds_label_key]
    names = getattr(feature, "names", None)
    return list(names) if names else [str(i) for i in range(cfg.num_classes)]


def load(cfg, split, training, seed=None):
    """The split as a dataset of `(uint8 video [T, H, W, 3], int32 label)`.

    Training reads the files in an order drawn from `seed` (default ``cfg.seed``).

    Raises:
        FileNotFoundError: if the dataset is not prepared under the data_dir.
        ValueError: if the video or label key is not a feature of the dataset.
    """
    builder = _builder(cfg)
    features = builder.info.features
    for key_name in ("tfds_video_key", "tfds_label_key"):
        key = getattr(cfg, key_name)
        if key not in features:
            raise ValueError(f"data.{key_name} is {key!r}, which {cfg.tfds_name} lacks; its "
                             f"features are {sorted(features.keys())}.")
    read_config = tfds.ReadConfig(shuffle_seed=cfg.seed if seed is None else seed)
    try:
        records = builder.as_dataset(split=split, shuffle_files=training,
                                     read_config=read_config)
    except AssertionError as error:
        # TFDS signals "not prepared" with an AssertionError; say what to do instead.
        raise FileNotFoundError(
            f"TFDS dataset {cfg.tfds_name!r} is not prepared in data_dir "
            f"{builder.data_dir!r} ({error}); prepare it with `tfds build {cfg.tfds_name}` "
            "or point data.path at the data_dir that holds it.") from error
    video_key, label_key = cfg.tfds_video_key, cfg.tfds_label_key
    return records.map(lambda ex: (ex[video_key], tf.cast(ex[label_key], tf.int32)),
                       num_parallel_calls=tf.data.AUTOTUNE)
