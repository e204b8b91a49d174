"""Rebuilding a trained model for export: from a run folder, or a config + checkpoint.

The run contract (``config.yaml`` plus checkpoints of weights keyed by
`movinet_tf.checkpoints.weights_by_name`) lives in `movinet_tf.checkpoints`;
this module adds what an exporter needs on top: class names and the eval
image sizes. A run folder alone is enough (its saved config is used); a
``--config`` or ``--set`` given with it may not change the model or data.
"""
import dataclasses
import os

from absl import logging

import movinet_tf
from movinet_tf import checkpoints
from movinet_tf import config as config_lib
from movinet_tf import data as data_lib
from movinet_tf.data.contract import InputContract
from movinet_tf.checkpoints import (CONFIG_FILE, find_config,  # noqa: F401 (re-exported)
                                    resolve_checkpoint, weights_by_name)

# The old name of `checkpoints.model_from_config` (tests and tools use it).
build_from_config = checkpoints.model_from_config


@dataclasses.dataclass
class LoadedModel:
    """A model ready to export, with what the export needs to know about it.

    Attributes:
        model: the `MovinetClassifier` (or `TemporalEnsemble`).
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

    def set_frame_rate(self, frame_rate):
        """States the frame rate of weights that come without a config (--frame_rate)."""
        if self.config is not None:
            raise ValueError("--frame_rate is for exports without --config; the config gives "
                             f"{self.contract.frame_rate:g} fps (data.video_fps / "
                             "data.temporal_stride).")
        self.contract = self.contract.with_frame_rate(frame_rate)
        self.model.input_contract = self.contract


def restore_weights(model, checkpoint):
    """Restores a training checkpoint's weights into `model`; every weight must match."""
    return checkpoints.restore(model, checkpoint)


def _labels_from_config(cfg):
    try:
        return list(data_lib.class_names(cfg.data))
    except (OSError, ValueError) as error:
        logging.warning("Could not read class names for data source %r (%s); using class_<i>.",
                        cfg.data.source, error)
        return None


def _sizes(cfg, image_size):
    size = image_size or cfg.data.image_size
    # Keep the config's short-side / crop ratio at another image size.
    return int(size), int(round(size * cfg.data.min_image_size / cfg.data.image_size))


def _config_for(config, checkpoint, overrides, allow_config_change):
    """The config of an export: the run's saved one, checked against `config`/`overrides`."""
    saved = find_config(checkpoint) if checkpoint is not None else None
    if config is None:
        if saved is None:
            return None
        return checkpoints.saved_config(os.path.dirname(saved), overrides, allow_config_change)
    cfg = config_lib.load_config(config, list(overrides))
    if saved is not None:
        checkpoints.check_config_change(config_lib.load_config(saved), cfg, os.path.dirname(saved),
                                        allow_config_change, source=f"--config {config}")
    return cfg


def load_model(config=None, checkpoint=None, *, overrides=(), model_id=None, stream=True,
               num_classes=None, image_size=None, allow_config_change=False):
    """Builds the model to export.

    From a run folder or checkpoint (its ``config.yaml`` is the config), from a
    training config (a name in configs/ or a YAML path) with the weights of
    `checkpoint`, or, without either, `movinet_tf.build_model(model_id, ...)`
    with random weights (quick experiments).

    Args:
        config: config name or path, or None.
        checkpoint: checkpoint prefix or run folder, or None (random weights).
        overrides: ``a.b=c`` strings applied to the config.
        model_id, stream, num_classes: used when there is no config.
        image_size: overrides the config's image size (default 172 without one).
        allow_config_change: let `config`/`overrides` change model or data keys
            of the run's saved config.

    Returns:
        A `LoadedModel`.

    Raises:
        FileNotFoundError: `checkpoint` does not exist or holds no checkpoint.
        ValueError: no config for a checkpoint, a config that differs from the
            run's, or a checkpoint that does not fit the model.
    """
    if checkpoint is not None and not os.path.exists(checkpoint) \
            and not os.path.exists(os.fspath(checkpoint) + ".index"):
        raise FileNotFoundError(f"--checkpoint {os.fspath(checkpoint)!r} does not exist.")
    cfg = _config_for(config, checkpoint, overrides, allow_config_change)
    if cfg is None and checkpoint is not None and model_id is None:
        raise ValueError(f"No --config given and no {CONFIG_FILE} beside checkpoint "
                         f"{checkpoint!r}; pass the training config.")
    if cfg is not None:
        size, min_size = _sizes(cfg, image_size)
        if cfg.runtime.mixed_precision != "float32":
            logging.info("Building the export model in float32 (trained with %s).",
                         cfg.runtime.mixed_precision)
        model, restored = checkpoints.build_and_restore(cfg, checkpoint)
        labels = _labels_from_config(cfg)
    else:
        if model_id is None:
            raise ValueError("Pass a config (and checkpoint), or a model_id for random weights.")
        if overrides:
            raise ValueError(f"--set overrides {list(overrides)} need a --config.")
        model = movinet_tf.build_model(model_id, stream=stream, num_classes=num_classes or 600)
        restored = checkpoints.restore(model, checkpoint) if checkpoint is not None else None
        labels = None
        size = image_size or 172
        min_size = size
    if restored is None:
        logging.warning("No checkpoint: %s has random weights.", model.name)
    return LoadedModel(model=model, labels=labels, image_size=int(size),
                       min_image_size=int(min_size), config=cfg, checkpoint=restored)
