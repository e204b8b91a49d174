"""Typed experiment configs, strict YAML loading and ``--set`` overrides.

An experiment is one `ExperimentConfig`: the sections ``model``, ``data`` (the
data pipeline's own `movinet_tf.data.DataConfig`), ``train``, ``eval`` and
``runtime``. A YAML file is read with a strict `yaml.SafeLoader` (no Python tags, no
key given twice) and checked against the
dataclasses field by field:

* an unknown or misspelled key is a `ValueError` that names it, lists the valid
  keys of its section and suggests the closest one;
* a value of the wrong type is a `TypeError` naming the key and the expected type;
* a value outside a field's allowed choices is a `ValueError` listing them.

``--set train.steps=100`` overrides go through the same checks: the value is
parsed as a YAML scalar, written into the raw mapping, and the whole mapping is
checked again.

Example:
    cfg = load_config("a0_stream_builtin", overrides=["train.steps=50"])
    save_config(cfg, "/tmp/run/config.yaml")
    assert load_config("/tmp/run/config.yaml") == cfg
"""
import copy
import dataclasses
import difflib
import math
import os
import pathlib
import types
import typing

import yaml
from absl import logging

from movinet_tf import atomic_io
from movinet_tf.data import DataConfig
from movinet_tf.data import validate_config as validate_data_config
from movinet_tf.models.specs import MODEL_IDS


def _choices(*values):
    return {"choices": tuple(values)}


@dataclasses.dataclass
class ModelConfig:
    """Which MoViNet to build; `None` means the model's own default.

    The number of classes comes from ``data.num_classes`` and the L2 factor from
    ``train.l2_weight_decay``, so neither is repeated here.
    """
    model_id: str = "a0"
    stream: bool = True
    conv_type: str = dataclasses.field(
        default="2plus1d", metadata=_choices("3d", "2plus1d", "3d_2plus1d"))
    se_type: typing.Optional[str] = dataclasses.field(
        default=None, metadata=_choices(None, "3d", "2d", "2plus3d", "none"))
    activation: typing.Optional[str] = None
    gating_activation: typing.Optional[str] = None
    classifier_activation: typing.Optional[str] = None
    use_positional_encoding: typing.Optional[bool] = None
    dropout_rate: float = 0.2
    stochastic_depth_drop_rate: float = 0.2
    block_specs: typing.Optional[str] = None


@dataclasses.dataclass
class TrainConfig:
    """Optimisation, checkpointing and fine-tuning.

    The learning rate scales linearly with the global batch actually run:
    ``lr = base_learning_rate * data.batch_size / base_batch_size``.
    """
    steps: int = 1000
    optimizer: str = dataclasses.field(
        default="rmsprop", metadata=_choices("rmsprop", "sgd", "adam", "adamw"))
    base_learning_rate: float = 1.8
    base_batch_size: int = 1024
    schedule: str = dataclasses.field(default="cosine", metadata=_choices("cosine", "constant"))
    warmup_steps: int = 0
    rmsprop_rho: float = 0.9
    momentum: float = 0.9
    epsilon: float = 1.0
    weight_decay: float = 0.0
    clipnorm: float = 1.0
    label_smoothing: float = 0.1
    l2_weight_decay: float = 3.0e-5
    subclips: int = 1
    # After the last step, re-estimate BatchNorm's moving statistics over this many
    # training batches (movinet_tf.bn_calibration); 0 keeps the moving averages.
    bn_recalibration_batches: int = 0
    init_checkpoint: str = ""
    init_checkpoint_modules: str = dataclasses.field(
        default="all", metadata=_choices("all", "backbone"))
    freeze_backbone: bool = False
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 50
    eval_every: int = 0
    seed: int = 0


@dataclasses.dataclass
class EvalConfig:
    """Evaluation: which modes to run and on which split.

    The split is ``data.eval_split``. Modes: ``clip`` (one clip, one crop per video), ``multi_clip``
    (``data.eval_num_clips`` x ``data.eval_num_crops`` views, logits averaged
    per video) and ``stream`` (frame by frame with states, accuracy after each
    second of video).

    ``num_frames`` (0 = ``data.num_frames``) lets evaluation see longer clips
    than training, as the published a3-a5 recipes do; ``video_fps`` is the
    frame rate of the source videos, used to turn frames into seconds.
    """
    modes: typing.List[str] = dataclasses.field(default_factory=lambda: ["clip"])
    max_batches: int = 0
    num_frames: int = 0
    video_fps: float = 25.0


_EVAL_MODES = ("clip", "multi_clip", "stream")


@dataclasses.dataclass
class RuntimeConfig:
    """Where and how the computation runs."""
    strategy: str = dataclasses.field(
        default="default",
        metadata=_choices("default", "mirrored", "multi_worker_mirrored", "tpu"))
    mixed_precision: str = dataclasses.field(
        default="float32", metadata=_choices("float32", "mixed_float16", "mixed_bfloat16"))
    tpu: str = ""
    cpu_logical_devices: int = 0
    keep_worker_checkpoints: bool = False
    run_eagerly: bool = False


@dataclasses.dataclass
class EnsembleConfig:
    """A temporal ensemble: `members` models, each at 1/`frame_stride_multiplier` of the frame rate.

    With ``members >= 2``, `movinet_tf.train` trains each member independently
    into ``model_dir/member<i>``: member i sees ``data.num_frames / multiplier``
    frames at ``data.temporal_stride * multiplier`` (the same span of video), and
    at inference takes frames i, i + N, ... of the full-rate clip. ``model_ids``
    gives each member its own architecture (e.g. [a4, a5]); empty means
    ``model.model_id`` for all. ``baseline_model_dir`` names a trained
    full-rate single model (same data) to compare against in evaluation.
    """
    members: int = 1
    frame_stride_multiplier: int = 2
    model_ids: typing.List[str] = dataclasses.field(default_factory=list)
    baseline_model_dir: str = ""


@dataclasses.dataclass
class ExperimentConfig:
    """One training/evaluation experiment; the top level of every YAML file."""
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
    ensemble: EnsembleConfig = dataclasses.field(default_factory=EnsembleConfig)


# ------------------------------------------------------------------ checking


def _type_name(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"list of {_type_name(args[0])}" if args else "list"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(value, tp, key):
    """Checks `value` against the annotation `tp` and returns it converted.

    Raises:
        TypeError: naming `key` and the expected type.
        ValueError: for unknown keys inside a nested section.
    """
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except TypeError:
                continue  # try the next member of the union; all failing is reported below
        raise TypeError(f"Config key {key!r} expects {_type_name(tp)}, got {value!r}.")
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise TypeError(
                f"Config key {key!r} expects a mapping of {tp.__name__} fields, got {value!r}.")
        return _from_dict(tp, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"Config key {key!r} expects {_type_name(tp)}, got {value!r}.")
        item_type = [a for a in typing.get_args(tp) if a is not Ellipsis]
        items = [_convert(v, item_type[0], f"{key}[{i}]") if item_type else v
                 for i, v in enumerate(value)]
        return list(items) if origin is list else tuple(items)
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"Config key {key!r} expects bool (true/false), got {value!r}.")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"Config key {key!r} expects int, got {value!r}.")
        return value
    if tp is float:
        # PyYAML reads '3e-5' (no dot) as a string; accept what float() accepts.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"Config key {key!r} expects float, got {value!r}.")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"Config key {key!r} expects str, got {value!r}.")
        return value
    if tp is typing.Any:
        return value
    raise TypeError(f"Config key {key!r} has an unsupported annotation {tp!r}.")


def _unknown_key_error(key, section, valid):
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    where = f"in {section!r}" if section else "at the top level"
    hint = f" Did you mean {close[0]!r}?" if close else ""
    full = f"{section}.{key}" if section else key
    return ValueError(
        f"Unknown config key {full!r} {where}.{hint} Valid keys: {', '.join(valid)}.")


def _from_dict(cls, values, section=""):
    """Builds dataclass `cls` from a mapping, strictly."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    for key in values:
        if key not in fields:
            raise _unknown_key_error(str(key), section, list(fields))
    kwargs = {}
    for name, value in values.items():
        key = f"{section}.{name}" if section else name
        converted = _convert(value, hints[name], key)
        choices = fields[name].metadata.get("choices")
        if choices is not None and converted not in choices:
            shown = ", ".join("null" if c is None else str(c) for c in choices)
            raise ValueError(f"Config key {key!r} is {converted!r}; expected one of: {shown}.")
        kwargs[name] = converted
    return cls(**kwargs)


def from_dict(cls, values, section=""):
    """Builds any config dataclass `cls` from a mapping, strictly (unknown keys, types, choices).

    The field annotations give the types and ``metadata={"choices": (...)}`` the allowed
    values; the search configs (`movinet_tf.nas.config`) use it too.
    """
    return _from_dict(cls, values, section)


def _validate(cfg):
    """Cross-field checks that a single field's type cannot express; returns `cfg`."""
    if cfg.model.block_specs is None and cfg.model.model_id not in MODEL_IDS:
        raise ValueError(
            f"Config key 'model.model_id' is {cfg.model.model_id!r}; expected one of "
            f"{', '.join(MODEL_IDS)} (any name is allowed with model.block_specs).")
    for mode in cfg.eval.modes:
        if mode not in _EVAL_MODES:
            raise ValueError(
                f"Config key 'eval.modes' contains {mode!r}; expected some of {list(_EVAL_MODES)}.")
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
    for key, value in positive.items():
        if value < 1:
            raise ValueError(f"Config key {key!r} must be >= 1, got {value}.")
    non_negative = {
        "train.warmup_steps": cfg.train.warmup_steps,
        "train.eval_every": cfg.train.eval_every,
        "train.bn_recalibration_batches": cfg.train.bn_recalibration_batches,
        "train.clipnorm": cfg.train.clipnorm,
        "train.l2_weight_decay": cfg.train.l2_weight_decay,
        "eval.max_batches": cfg.eval.max_batches,
        "eval.num_frames": cfg.eval.num_frames,
        "runtime.cpu_logical_devices": cfg.runtime.cpu_logical_devices,
    }
    for key, value in non_negative.items():
        if value < 0:
            raise ValueError(f"Config key {key!r} must be >= 0, got {value}.")
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
    if cfg.eval.video_fps <= 0:
        raise ValueError(f"eval.video_fps must be > 0, got {cfg.eval.video_fps}.")
    _validate_ensemble(cfg)
    # A config whose data is not on this machine (the Kinetics recipes) must still load,
    # so an empty data.path is reported by the trainer, with directions, not here.
    if cfg.data.path or cfg.data.source in ("builtin", "tfds"):
        validate_data_config(cfg.data)
    return cfg


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
    non_negative = {"train.weight_decay": train.weight_decay}
    for key, value in non_negative.items():
        if value < 0:
            raise ValueError(f"Config key {key!r} must be >= 0, got {value}.")
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


def member_config(cfg, index):
    """The training config of ensemble member `index`: 1/multiplier of the frames, same span.

    Frames ``data.num_frames / m`` at stride ``data.temporal_stride * m``, taken
    by the data pipeline as frames ``index, index + m, ...`` of the full-rate clip
    (``data.interleave_index`` / ``interleave_count``: member 1 of 2 gets the odd
    frames); its own model id (``ensemble.model_ids``) and seed;
    ``ensemble.members`` 1.
    """
    ens = cfg.ensemble
    if not 0 <= index < ens.members:
        raise ValueError(f"Ensemble member {index} does not exist: ensemble.members is "
                         f"{ens.members}.")
    m = ens.frame_stride_multiplier
    member = copy.deepcopy(cfg)
    member.data.num_frames = cfg.data.num_frames // m
    member.data.temporal_stride = cfg.data.temporal_stride * m
    member.eval.num_frames = cfg.eval.num_frames // m
    member.data.interleave_count = m
    member.data.interleave_index = index
    if ens.model_ids:
        member.model.model_id = ens.model_ids[index]
    member.train.seed = cfg.train.seed + index
    member.ensemble = EnsembleConfig()
    return _validate(member)


def config_from_dict(values):
    """Builds and validates an `ExperimentConfig` from a plain mapping.

    Raises:
        ValueError: unknown key (with the valid keys and the closest match),
            a value outside its choices, or inconsistent fields.
        TypeError: a value of the wrong type.
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise TypeError(f"A config must be a mapping at the top level, got {type(values).__name__}.")
    return _validate(_from_dict(ExperimentConfig, values))


def config_to_dict(cfg):
    """The config as plain Python data (what `save_config` writes)."""
    return dataclasses.asdict(cfg)


# --------------------------------------------------------------- overrides


def parse_override(text):
    """Splits ``"a.b=value"`` into (["a", "b"], parsed value).

    The value is parsed as a YAML scalar (``10`` -> int, ``true`` -> bool,
    ``null`` -> None, ``[clip, stream]`` -> list); anything else stays a string.

    Raises:
        ValueError: when `text` has no ``=`` or an empty key.
    """
    if not isinstance(text, str) or "=" not in text:
        raise ValueError(f"--set expects key=value (e.g. train.steps=100), got {text!r}.")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ValueError(f"--set has an empty key or key part in {text!r}; expected e.g. train.steps=100.")
    try:
        value = yaml.load(raw, Loader=_StrictLoader) if raw.strip() else ""  # noqa: S506
    except yaml.YAMLError as error:
        raise ValueError(f"--set {text!r}: cannot parse the value {raw!r} as YAML: {error}") from error
    return key.split("."), value


def apply_overrides(values, overrides):
    """Returns a copy of the raw mapping `values` with ``--set`` overrides applied."""
    values = copy.deepcopy(values) if values else {}
    for text in overrides or ():
        path, value = parse_override(text)
        node = values
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise TypeError(
                    f"--set {text!r}: {'.'.join(path[:i + 1])!r} is {child!r}, not a section.")
            node = child
        node[path[-1]] = value
    return values


# ----------------------------------------------------------------- files


def config_dirs():
    """Directories searched for a bare config name, in order.

    ``movinet_tf/configs`` (package data of an installed package) first, then the
    repository's top-level ``configs/``.
    """
    package_dir = pathlib.Path(__file__).resolve().parent
    candidates = [package_dir / "configs", package_dir.parent / "configs"]
    return [d for d in candidates if d.is_dir()]


def available_configs():
    """Sorted names of the shipped YAML configs."""
    names = set()
    for directory in config_dirs():
        names.update(p.name for p in directory.glob("*.yaml"))
    return sorted(names)


def resolve_config_path(name):
    """Turns ``a0_stream``, ``a0_stream.yaml`` or a path into an existing file.

    Raises:
        FileNotFoundError: naming what was looked for, where, and the closest
            shipped config.
    """
    if not name:
        raise ValueError("No config given; pass --config NAME (e.g. a0_stream_builtin) or a path.")
    path = pathlib.Path(os.path.expanduser(name))
    if path.is_file():
        return path
    file_name = path.name if path.suffix in (".yaml", ".yml") else path.name + ".yaml"
    if path.parent == pathlib.Path("."):
        for directory in config_dirs():
            if (directory / file_name).is_file():
                return directory / file_name
    shipped = available_configs()
    close = difflib.get_close_matches(file_name, shipped, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    searched = ", ".join(str(d) for d in config_dirs()) or "(no configs directory found)"
    raise FileNotFoundError(
        f"Config {name!r} not found: it is not a file, and {file_name!r} is not in {searched}.{hint} "
        f"Shipped configs: {', '.join(shipped)}.")


class _StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key given twice in one mapping.

    PyYAML keeps the last of two equal keys, so a second ``train:`` section
    would silently replace the first one whole.
    """

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # An unhashable key; the base class reports it.
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"duplicate key {key!r} (first at line {first.line + 1}, again at line "
                    f"{key_node.start_mark.line + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def read_yaml(stream, name):
    """Parses YAML text or a file object strictly: safe tags only, no duplicate keys.

    Raises:
        ValueError: naming `name` and the line of the problem.
    """
    try:
        return yaml.load(stream, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        raise ValueError(f"Config {name!r} is not valid YAML: {error}") from error


def _override_key(text):
    return text.split("=", 1)[0].strip() if isinstance(text, str) else str(text)


def _scale_warmup(values, file_values, overrides):
    """Scales ``train.warmup_steps`` when ``--set train.steps`` shortens a run.

    Only when the override sets steps but not the warm-up: the warm-up keeps its
    share of the run (rounded down), instead of exceeding the new length.
    """
    keys = {_override_key(t) for t in overrides or ()}
    if "train.steps" not in keys or "train.warmup_steps" in keys:
        return values
    file_train = (file_values or {}).get("train") or {}
    train = values.get("train") or {}
    old_steps, warmup, steps = file_train.get("steps"), file_train.get("warmup_steps"), train.get("steps")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (old_steps, warmup, steps)):
        return values
    if not 0 < steps < old_steps or not warmup:
        return values
    scaled = warmup * steps // old_steps
    train["warmup_steps"] = scaled
    logging.warning("--set train.steps=%d shortens the run from %d steps: warm-up scaled from %d "
                    "to %d step(s) (set train.warmup_steps to choose).", steps, old_steps, warmup,
                    scaled)
    return values


def load_config(name, overrides=()):
    """Reads a YAML config (bare name or path), applies overrides, checks it.

    Args:
        name: a shipped config name (``a0_stream``), a file name in ``configs/``
            or a path to a YAML file.
        overrides: ``["train.steps=10", ...]`` as given to ``--set``. When one
            shortens ``train.steps`` alone, the warm-up is scaled with it.

    Returns:
        The `ExperimentConfig`.

    Raises:
        FileNotFoundError: for a missing config file.
        ValueError / TypeError: see `config_from_dict` and `parse_override`; the
            message names the ``--set`` override or the file at fault.
    """
    path = resolve_config_path(name)
    with open(path, encoding="utf-8") as f:
        file_values = read_yaml(f, str(path))
    values = _scale_warmup(apply_overrides(file_values, overrides), file_values, overrides)
    try:
        return config_from_dict(values)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{error} ({_blame(error, file_values, overrides, path)})") from error


def _blame(error, file_values, overrides, path):
    """Which input a config error comes from: the --set override(s) named in it, or the file."""
    if overrides:
        try:
            config_from_dict(copy.deepcopy(file_values))
        except (ValueError, TypeError):
            return f"config file: {path}"
        message = str(error)
        named = [t for t in overrides if f"'{_override_key(t)}'" in message
                 or _override_key(t) in message]
        shown = named or list(overrides)
        return "from " + ", ".join(f"--set {t}" for t in shown)
    return f"config file: {path}"


def atomic_write_text(path, text):
    """Writes `text` to `path` atomically, with the umask's mode (see `movinet_tf.atomic_io`)."""
    atomic_io.write_text(path, text)


def config_to_yaml(cfg):
    """The resolved config as YAML text."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)


def save_config(cfg, path):
    """Writes the resolved config to `path` atomically."""
    atomic_write_text(path, config_to_yaml(cfg))


def learning_rate(cfg):
    """The peak learning rate for the global batch actually run.

    ``base_learning_rate * data.batch_size / base_batch_size`` (linear scaling);
    e.g. the published 1.8 at batch 1024 becomes 0.0140625 at batch 8.
    """
    return cfg.train.base_learning_rate * cfg.data.batch_size / cfg.train.base_batch_size
