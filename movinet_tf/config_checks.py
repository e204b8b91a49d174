"""Cross-field checks of an `ExperimentConfig`, beyond what one field's type can say.

`movinet_tf.config.config_from_dict` runs `validate` after the strict field-by-field
read of `movinet_tf.strict_yaml`: ranges (positive steps, rates in [0, 1), finite
floats), combinations (stream evaluation needs a stream model, sub-clips a
stream model, an ensemble a frame count its stride multiplier divides) and the
data section's own checks.
"""
import dataclasses
import math

from movinet_tf.data import validate_config as validate_data_config
from movinet_tf.models.specs import MODEL_IDS

EVAL_MODES = ("clip", "multi_clip", "stream")


def validate(cfg):
    """Cross-field checks that a single field's type cannot express; returns `cfg`."""
    if cfg.model.block_specs is None and cfg.model.model_id not in MODEL_IDS:
        raise ValueError(
            f"Config key 'model.model_id' is {cfg.model.model_id!r}; expected one of "
            f"{', '.join(MODEL_IDS)} (any name is allowed with model.block_specs).")
    for mode in cfg.eval.modes:
        if mode not in EVAL_MODES:
            raise ValueError(
                f"Config key 'eval.modes' contains {mode!r}; expected some of {list(EVAL_MODES)}.")
    if "stream" in cfg.eval.modes and not cfg.model.stream:
        raise ValueError(
            "eval.modes contains 'stream' but model.stream is false: streaming evaluation "
            "needs a stream (causal) model. Set model.stream=true or drop 'stream'.")
    positive = {
        "train.steps": cfg.train.steps,
        "train.base_batch_size": cfg.train.base_batch_size,
        "train.subclips": cfg.train.subclips,
        "train.checkpoint_every": cfg.train.checkpoint_every,
        "train.keep_checkpoints": cfg.train.keep_checkpoints,
        "train.log_every": cfg.train.log_every,
    }
    _check_at_least(positive, 1)
    non_negative = {
        "train.warmup_steps": cfg.train.warmup_steps,
        "train.eval_every": cfg.train.eval_every,
        "train.bn_recalibration_batches": cfg.train.bn_recalibration_batches,
        "train.clipnorm": cfg.train.clipnorm,
        "train.l2_weight_decay": cfg.train.l2_weight_decay,
        "eval.max_batches": cfg.eval.max_batches,
        "eval.num_frames": cfg.eval.num_frames,
        "runtime.cpu_logical_devices": cfg.runtime.cpu_logical_devices,
        "runtime.intra_op_threads": cfg.runtime.intra_op_threads,
    }
    _check_at_least(non_negative, 0)
    _check_ranges(cfg)
    if cfg.train.warmup_steps > cfg.train.steps:
        raise ValueError(
            f"train.warmup_steps ({cfg.train.warmup_steps}) exceeds train.steps "
            f"({cfg.train.steps}).")
    if not 0.0 <= cfg.train.label_smoothing < 1.0:
        raise ValueError(
            f"train.label_smoothing must be in [0, 1), got {cfg.train.label_smoothing}.")
    if cfg.train.subclips > 1 and not cfg.model.stream:
        raise ValueError(
            f"train.subclips={cfg.train.subclips} needs a stream model (states carry "
            "from one sub-clip to the next); set model.stream=true or train.subclips=1.")
    if cfg.train.bn_recalibration_batches and cfg.runtime.strategy != "default":
        raise ValueError(
            "train.bn_recalibration_batches runs on one device; it needs "
            f"runtime.strategy=default, got {cfg.runtime.strategy!r}.")
    if cfg.train.freeze_backbone and not cfg.train.init_checkpoint:
        raise ValueError(
            "train.freeze_backbone=true needs train.init_checkpoint: a frozen backbone keeps "
            "its random initial weights and learns nothing. Set train.init_checkpoint to a "
            "trained run or checkpoint, or train.freeze_backbone=false.")
    _validate_ensemble(cfg)
    # A config whose data is not on this machine (the Kinetics recipes) must still load,
    # so an empty data.path is reported by the trainer, with directions, not here.
    if cfg.data.path or cfg.data.source in ("builtin", "tfds"):
        validate_data_config(cfg.data)
    return cfg


def _check_at_least(values, minimum):
    """Raises ValueError naming the first key of `values` ({key: number}) below `minimum`."""
    for key, value in values.items():
        if value < minimum:
            raise ValueError(f"Config key {key!r} must be >= {minimum}, got {value}.")


def _float_fields(node, section=""):
    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        key = f"{section}.{field.name}" if section else field.name
        if dataclasses.is_dataclass(value):
            yield from _float_fields(value, key)
        elif isinstance(value, float):
            yield key, value


def _check_ranges(cfg):
    """Every float is finite; rates, factors and sizes are in their meaningful range."""
    for key, value in _float_fields(cfg):
        if not math.isfinite(value):
            raise ValueError(f"Config key {key!r} is {value}; expected a finite number.")
    train, model = cfg.train, cfg.model
    greater_than_zero = {"train.base_learning_rate": train.base_learning_rate,
                         "train.epsilon": train.epsilon}
    for key, value in greater_than_zero.items():
        if value <= 0:
            raise ValueError(f"Config key {key!r} must be > 0, got {value}.")
    _check_at_least({"train.weight_decay": train.weight_decay}, 0)
    unit = {"train.momentum": train.momentum, "train.rmsprop_rho": train.rmsprop_rho,
            "model.dropout_rate": model.dropout_rate,
            "model.stochastic_depth_drop_rate": model.stochastic_depth_drop_rate}
    for key, value in unit.items():
        if not 0.0 <= value < 1.0:
            raise ValueError(f"Config key {key!r} must be in [0, 1), got {value}.")


def _validate_ensemble(cfg):
    ens = cfg.ensemble
    if ens.members < 1:
        raise ValueError(f"Config key 'ensemble.members' must be >= 1, got {ens.members}.")
    if ens.members == 1:
        if ens.model_ids:
            raise ValueError("ensemble.model_ids is set but ensemble.members is 1 (no ensemble).")
        return
    multiplier = ens.frame_stride_multiplier
    if multiplier < 1:
        raise ValueError(
            f"Config key 'ensemble.frame_stride_multiplier' must be >= 1, got {multiplier}.")
    if multiplier != ens.members:
        raise ValueError(
            f"ensemble.frame_stride_multiplier ({multiplier}) must equal ensemble.members "
            f"({ens.members}): member i takes frames i, i + N, ... of the full-rate clip.")
    for key, frames in (("data.num_frames", cfg.data.num_frames),
                        ("eval.num_frames", cfg.eval.num_frames)):
        if frames % multiplier:
            raise ValueError(f"{key} ({frames}) must be a multiple of "
                             f"ensemble.frame_stride_multiplier ({multiplier}).")
    if ens.model_ids:
        if len(ens.model_ids) != ens.members:
            raise ValueError(f"ensemble.model_ids lists {len(ens.model_ids)} models for "
                             f"{ens.members} members.")
        unknown = [m for m in ens.model_ids if m not in MODEL_IDS]
        if unknown:
            raise ValueError(f"ensemble.model_ids has unknown model ids {unknown}; expected "
                             f"some of {', '.join(MODEL_IDS)}.")
        if cfg.model.block_specs is not None:
            raise ValueError("ensemble.model_ids cannot be combined with model.block_specs.")
    if cfg.data.interleave_count != 1:
        raise ValueError(f"data.interleave_count is {cfg.data.interleave_count} in an ensemble "
                         "config; leave it 1: each member's is set from the ensemble section.")
    if cfg.train.init_checkpoint:
        raise ValueError("train.init_checkpoint is not supported for ensembles: each member "
                         "trains from its own initialisation.")
