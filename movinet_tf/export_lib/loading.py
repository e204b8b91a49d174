"""Rebuilding a trained model for export: from a config + checkpoint, or a model_dir.

Training (`python -m movinet_tf.train`) writes checkpoints with
`tf.train.CheckpointManager` into ``model_dir`` and the resolved config as
``model_dir/config.yaml``; the checkpoint holds the weights keyed by their
path (see `movinet_tf.train.weights_by_name`). `load_model` rebuilds the model
from the config and restores those weights, checking that every weight of the
model was found in the checkpoint.
"""
import dataclasses
import os

import tensorflow as tf
from absl import logging

from movinet_tf.data.contract import InputContract
from movinet_tf.train import weights_by_name  # The training checkpoint key scheme.

CONFIG_FILE = "config.yaml"


@dataclasses.dataclass
class LoadedModel:
    """A model ready to export, with what the export needs to know about it.

    Attributes:
        model: the `MovinetClassifier`.
        labels: class names (None when unknown).
        image_size: the training/eval frame side.
        min_image_size: the eval short side before the centre crop.
        config: the `ExperimentConfig` (None without one).
        checkpoint: the checkpoint path restored (None: random weights).
        contract: the `InputContract` of the training config at `image_size`
            (frame rate unknown without a config).
    """
    model: object
    labels: list
    image_size: int
    min_image_size: int
    config: object = None
    checkpoint: str = None
    contract: object = None

    def __post_init__(self):
        if self.contract is None:
            if self.config is not None:
                self.contract = InputContract.from_data_config(self.config.data, self.image_size)
            else:
                self.contract = InputContract(frame_rate=None, image_size=self.image_size,
                                              min_image_size=self.min_image_size)
        # Exports of this model find it there when not given one explicitly.
        self.model.input_contract = self.contract


def resolve_checkpoint(path):
    """A checkpoint prefix from a prefix or a directory (its latest checkpoint).

    Raises:
        FileNotFoundError: if nothing matches.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"No checkpoint in directory {path!r} (no 'checkpoint' "
                                    "index file from tf.train.CheckpointManager).")
        return latest
    if not tf.io.gfile.glob(path + ".index") and not tf.io.gfile.glob(path + "*.index"):
        raise FileNotFoundError(f"Checkpoint {path!r} not found (expected {path}.index).")
    return path


def find_config(checkpoint):
    """The config.yaml beside a checkpoint (its directory or the directory itself), or None."""
    checkpoint = os.fspath(checkpoint)
    directory = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
    candidate = os.path.join(directory, CONFIG_FILE)
    return candidate if os.path.isfile(candidate) else None


def build_from_config(cfg):
    """The model of a training config, as `movinet_tf.train.build_model` builds it."""
    import movinet_tf
    overrides = {key: value for key, value in dataclasses.asdict(cfg.model).items()
                 if key not in ("model_id", "stream") and value is not None}
    return movinet_tf.build_model(cfg.model.model_id, stream=cfg.model.stream,
                                  num_classes=cfg.data.num_classes, **overrides)


def restore_weights(model, checkpoint):
    """Restores a training checkpoint's weights into `model`; every weight must match."""
    path = resolve_checkpoint(checkpoint)
    status = tf.train.Checkpoint(model=weights_by_name(model)).restore(path)
    status.expect_partial()  # The optimizer and data position are not needed.
    status.assert_existing_objects_matched()
    logging.info("Restored %d weights of %s from %s.", len(model.weights), model.name, path)
    return path


def _labels_from_config(cfg):
    from movinet_tf.data import class_names
    try:
        return list(class_names(cfg.data))
    except (OSError, ValueError) as error:
        logging.warning("Could not read class names for data source %r (%s); using class_<i>.",
                        cfg.data.source, error)
        return None


def _load_ensemble(cfg, model_dir, image_size):
    """A trained temporal ensemble (``model_dir/member<i>``) as a `LoadedModel`."""
    from movinet_tf import ensemble_train
    if model_dir is None or not os.path.isdir(model_dir):
        raise ValueError("An ensemble config needs --checkpoint MODEL_DIR: the directory with "
                         f"member0/ .. member{cfg.ensemble.members - 1}/; got {model_dir!r}.")
    model = ensemble_train.load_ensemble(cfg, model_dir)
    size = image_size or cfg.data.image_size
    min_size = int(round(size * cfg.data.min_image_size / cfg.data.image_size))
    return LoadedModel(model=model, labels=_labels_from_config(cfg), image_size=int(size),
                       min_image_size=int(min_size), config=cfg, checkpoint=model_dir)


def load_model(config=None, checkpoint=None, *, overrides=(), model_id=None, stream=True,
               num_classes=None, image_size=None):
    """Builds the model to export.

    Either from a training config (a name in configs/, a YAML path, or found as
    ``config.yaml`` beside `checkpoint`) with the weights of `checkpoint`, or,
    without a config, `movinet_tf.build_model(model_id, ...)` with random
    weights (quick experiments).

    Args:
        config: config name or path, or None.
        checkpoint: checkpoint prefix or directory, or None (random weights).
        overrides: ``a.b=c`` strings applied to the config.
        model_id, stream, num_classes: used when there is no config.
        image_size: overrides the config's image size (default 172 without one).

    Returns:
        A `LoadedModel`.
    """
    from movinet_tf import config as config_lib
    if config is None and checkpoint is not None:
        config = find_config(checkpoint)
        if config is None and model_id is None:
            raise ValueError(f"No --config given and no {CONFIG_FILE} beside checkpoint "
                             f"{checkpoint!r}; pass the training config.")
    if config is not None:
        cfg = config_lib.load_config(config, list(overrides))
        if cfg.ensemble.members > 1:
            return _load_ensemble(cfg, checkpoint, image_size)
        if cfg.runtime.mixed_precision != "float32":
            logging.info("Building the export model in float32 (trained with %s).",
                         cfg.runtime.mixed_precision)
        model = build_from_config(cfg)
        labels = _labels_from_config(cfg)
        size = image_size or cfg.data.image_size
        # Keep the config's short-side / crop ratio at another image size.
        min_size = int(round(size * cfg.data.min_image_size / cfg.data.image_size))
    else:
        import movinet_tf
        if model_id is None:
            raise ValueError("Pass a config (and checkpoint), or a model_id for random weights.")
        if overrides:
            raise ValueError(f"--set overrides {list(overrides)} need a --config.")
        model = movinet_tf.build_model(model_id, stream=stream,
                                       num_classes=num_classes or 600)
        cfg = None
        labels = None
        size = image_size or 172
        min_size = size
    restored = restore_weights(model, checkpoint) if checkpoint is not None else None
    if restored is None:
        logging.warning("No checkpoint: %s has random weights.", model.name)
    return LoadedModel(model=model, labels=labels, image_size=int(size),
                       min_image_size=int(min_size), config=cfg, checkpoint=restored)
