"""The training data: checked before anything is built, then read as a resumable stream."""
import dataclasses
import glob
import os

import tensorflow as tf

from movinet_tf import data as data_lib
from movinet_tf.data import files


def check_data_source(data_cfg):
    """Fails fast, before any model is built, when a config points at absent data.

    Raises:
        ValueError: saying which key to set (``data.path``, ``data.source``).
    """
    if data_cfg.source == "builtin":
        return
    how = ("Point the config at local data with --set data.path=... (a TFRecord glob, a "
           "class-per-folder root, a csv file, or a TFDS data_dir) and --set "
           "data.source=tfrecord|folder|csv|tfds to match its format; see docs/training.md.")
    if data_cfg.source == "tfds":
        if not data_cfg.tfds_name:
            raise ValueError(f"data.source=tfds needs data.tfds_name (e.g. ucf101). {how}")
        return
    if not data_cfg.path:
        raise ValueError(
            f"data.source={data_cfg.source!r} but data.path is empty: this config needs a "
            f"dataset that is not bundled. {how}")
    pattern = os.path.expanduser(data_cfg.path).replace("{split}", "*")
    if not glob.glob(pattern):
        raise ValueError(f"data.path {data_cfg.path!r} does not exist (nothing matches {pattern!r}). {how}")
    if data_cfg.source in ("folder", "csv"):
        _check_video_files(dataclasses.replace(data_cfg, path=os.path.expanduser(data_cfg.path)))


def _check_video_files(data_cfg):
    """The class count matches and the training videos exist, before anything is built."""
    names = data_lib.class_names(data_cfg)
    if len(names) != data_cfg.num_classes:
        raise ValueError(
            f"data.num_classes is {data_cfg.num_classes} but the {data_cfg.source} source "
            f"{data_cfg.path!r} has {len(names)} classes ({names[:5]}"
            f"{'...' if len(names) > 5 else ''}); set data.num_classes={len(names)}.")
    lister = files.list_folder if data_cfg.source == "folder" else files.list_csv
    paths, _ = lister(data_cfg, data_cfg.train_split)
    if not any(os.path.isfile(p) for p in paths):
        raise ValueError(
            f"None of the {len(paths)} videos listed for split {data_cfg.train_split!r} in "
            f"data.path {data_cfg.path!r} exists (e.g. {paths[0]!r}).")


def train_iterator(cfg, strategy, epoch, skip_batches):
    """A distributed pass over the training split, fast-forwarded to a saved position.

    Args:
        cfg: the `ExperimentConfig`; ``data.batch_size`` is the global batch.
        strategy: the `tf.distribute.Strategy` the batches are for.
        epoch: the number of passes already completed (picks this pass's order).
        skip_batches: global batches of this pass already used.

    Each pass and each input pipeline gets its own seed for the shuffles and the
    augmentation (`pass_seed`), so a resume replays the same order. It is passed
    to the pipeline, not set as TensorFlow's global seed: `tf.random.set_seed`
    makes every traced function re-instantiate at its next call, which cost the
    train step 8-13 s at each new pass.
    """
    num_replicas = strategy.num_replicas_in_sync
    data_cfg = dataclasses.replace(cfg.data, batch_size=cfg.data.batch_size // num_replicas)
    epoch, skip_batches = int(epoch), int(skip_batches)

    def dataset_fn(context):
        dataset = data_lib.build_dataset(
            data_cfg, cfg.data.train_split, training=True,
            seed=pass_seed(cfg, epoch, context.input_pipeline_id))
        per_pipeline = num_replicas // context.num_input_pipelines
        return dataset.skip(skip_batches * per_pipeline)

    return iter(strategy.distribute_datasets_from_function(dataset_fn))


def pass_seed(cfg, epoch, pipeline_id=0):
    """The seed of one pass over the training split: a function of ``data.seed``,
    ``train.seed``, the epoch and the input pipeline, in [0, 2**31)."""
    mixed = (int(cfg.data.seed) * 1_000_003 + int(cfg.train.seed) * 7919
             + int(epoch) * 104_729 + int(pipeline_id) * 15_485_863)
    return mixed % (2 ** 31 - 1)
