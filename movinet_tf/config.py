"""Typed experiment configs: the schema, its checks, and loading a YAML file with ``--set``.

An experiment is one `ExperimentConfig`: the sections ``model``, ``data`` (the
data pipeline's own `movinet_tf.data.DataConfig`), ``train``, ``eval``,
``runtime`` and ``ensemble``. A YAML file is read with the strict loader of
`movinet_tf.strict_yaml` (no Python tags, no key given twice) and checked against
the dataclasses field by field:

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
import pathlib
import typing

import yaml
from absl import logging

from movinet_tf import atomic_io
from movinet_tf import strict_yaml
from movinet_tf.config_checks import validate
from movinet_tf.data import DataConfig


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
    # How depthwise kernels start (movinet_tf.training.state.build_model): 'keras' is Keras's
    # He normal on our [kt, kh, kw, 1, C] kernels (fan-in kt*kh*kw); 'official' is the fan-in
    # TF Model Garden's [kh, kw, C, 1] kernels get (kt*kh*kw*C), about sqrt(C) times smaller.
    depthwise_init: str = dataclasses.field(default="keras", metadata=_choices("keras", "official"))
    subclips: int = 1
    # After the last step, re-estimate BatchNorm's moving statistics over this many
    # training batches (movinet_tf.training.bn_calibration); 0 keeps the moving averages.
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
    than training, as the published a3-a5 recipes do. Stream mode turns frames
    into seconds with ``data.video_fps / data.temporal_stride``.
    """
    modes: typing.List[str] = dataclasses.field(default_factory=lambda: ["clip"])
    max_batches: int = 0
    num_frames: int = 0


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
    # Threads per op on the CPU (TF's intra-op pool); 0 = TensorFlow's default (one per core).
    intra_op_threads: int = 0
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
    return validate(member)


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
    return validate(strict_yaml.from_dict(ExperimentConfig, _migrate(values)))


def _migrate(values):
    """Reads keys of older versions: ``eval.video_fps`` is now ``data.video_fps`` (one key).

    Runs saved before the change hold both, with the same value; a config
    that gives only the old key keeps its meaning. Two different values are
    refused: which one the videos have cannot be guessed.
    """
    old_eval = values.get("eval")
    if not isinstance(old_eval, dict) or "video_fps" not in old_eval:
        return values
    values = copy.deepcopy(values)
    old = values["eval"].pop("video_fps")
    data = values.get("data")
    if data is None:
        data = values["data"] = {}
    if isinstance(data, dict) and "video_fps" in data and data["video_fps"] != old:
        raise ValueError(
            f"eval.video_fps ({old}) and data.video_fps ({data['video_fps']}) disagree; "
            "eval.video_fps was merged into data.video_fps (the source videos' frame rate): "
            "delete eval.video_fps and keep the right data.video_fps.")
    if isinstance(data, dict):
        data.setdefault("video_fps", old)
    logging.warning("Config key eval.video_fps is deprecated and read as data.video_fps=%s; "
                    "delete it from the config.", old)
    return values


def config_to_dict(cfg):
    """The config as plain Python data (what `save_config` writes)."""
    return dataclasses.asdict(cfg)


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
    return strict_yaml.yaml_names(config_dirs())


def resolve_config_path(name):
    """Turns ``a0_stream``, ``a0_stream.yaml`` or a path into an existing file.

    Raises:
        FileNotFoundError: naming what was looked for, where, and the closest
            shipped config.
    """
    if not name:
        raise ValueError("No config given; pass --config NAME (e.g. a0_stream_builtin) or a path.")
    return strict_yaml.find_yaml(name, config_dirs())


def _scale_warmup(values, file_values, overrides):
    """Scales ``train.warmup_steps`` when ``--set train.steps`` shortens a run.

    Only when the override sets steps but not the warm-up: the warm-up keeps its
    share of the run (rounded down), instead of exceeding the new length.
    """
    keys = {strict_yaml.override_key(t) for t in overrides or ()}
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
        ValueError / TypeError: see `config_from_dict` and `strict_yaml.parse_override`; the
            message names the ``--set`` override or the file at fault.
    """
    path = resolve_config_path(name)
    file_values, values = strict_yaml.load_yaml_file(path, overrides)
    values = _scale_warmup(values, file_values, overrides)
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
        named = [t for t in overrides if f"'{strict_yaml.override_key(t)}'" in message
                 or strict_yaml.override_key(t) in message]
        shown = named or list(overrides)
        return "from " + ", ".join(f"--set {t}" for t in shown)
    return f"config file: {path}"


def config_to_yaml(cfg):
    """The resolved config as YAML text."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)


def save_config(cfg, path):
    """Writes the resolved config to `path` atomically."""
    atomic_io.write_text(path, config_to_yaml(cfg))


def learning_rate(cfg):
    """The peak learning rate for the global batch actually run.

    ``base_learning_rate * data.batch_size / base_batch_size`` (linear scaling);
    e.g. the published 1.8 at batch 1024 becomes 0.0140625 at batch 8.
    """
    return cfg.train.base_learning_rate * cfg.data.batch_size / cfg.train.base_batch_size
