"""Typed, strict configs of an architecture search (``python -m movinet_tf.search``).

A search YAML has four sections: ``space`` (the `SearchSpace`), ``model`` (how
candidates are built: stream or base, conv and SE types, activations), ``data``
(the data pipeline's own `DataConfig`) and ``search`` (the TuNAS loop). Unknown
keys are errors that name the key, the valid keys and the closest match; a value
of the wrong type is a `TypeError` naming the key. ``--set search.steps=10``
overrides use the trainer's override syntax.
"""
import dataclasses
import difflib
import typing

import yaml

from movinet_tf import config as experiment_config
from movinet_tf.data.config import DataConfig, validate_config as validate_data_config
from movinet_tf.nas import space as space_lib
from movinet_tf.nas.cost import COST_KINDS


@dataclasses.dataclass
class SpaceConfig:
    """The search space. ``preset: movinet`` is the paper's space (`movinet_space`);
    ``preset: custom`` uses the lists below (see `SearchSpace` for their meaning)."""
    preset: str = "movinet"
    stem_widths: typing.List[int] = dataclasses.field(default_factory=lambda: [8])
    block_widths: typing.List[typing.List[int]] = dataclasses.field(
        default_factory=lambda: [[8, 16], [16, 24], [24, 32], [24, 32], [32, 48]])
    max_layers: typing.List[int] = dataclasses.field(default_factory=lambda: [2, 3, 3, 3, 3])
    expand_ratios: typing.List[str] = dataclasses.field(default_factory=lambda: ["2", "3", "4"])
    kernels: typing.List[str] = dataclasses.field(
        default_factory=lambda: [space_lib.kernel_text(k) for k in space_lib.KERNELS])
    head_widths: typing.List[int] = dataclasses.field(default_factory=lambda: [64, 96])
    classifier_filters: int = 128
    min_layers: int = 1


@dataclasses.dataclass
class CandidateConfig:
    """How every candidate architecture is built (as ``build_model`` arguments)."""
    stream: bool = True
    conv_type: str = "2plus1d"
    se_type: str = "2plus3d"
    activation: str = "hard_swish"
    gating_activation: str = "hard_sigmoid"
    classifier_activation: str = "hard_swish"
    dropout_rate: float = 0.2


@dataclasses.dataclass
class LoopConfig:
    """The one-shot search (TuNAS): alternating weight and controller steps.

    Attributes:
        steps: search steps; each is one shared-weight step on a train batch and
            (after `warmup_steps`) one controller step on a validation batch.
        warmup_steps: first steps train the shared weights on uniformly sampled
            architectures only (the controller waits for usable weights).
        weight_optimizer: 'sgd' (with momentum), 'adam' or 'rmsprop'.
        weight_learning_rate: learning rate of the shared weights (cosine decay).
        momentum: momentum of sgd / rmsprop.
        label_smoothing: of the shared weights' cross-entropy.
        controller_learning_rate: Adam learning rate of the controller logits.
        baseline_momentum: of the reward's moving-average baseline.
        cost: 'flops' (multiply-adds per frame, in millions) or
            'tflite_latency' (ms per frame of the streaming TFLite model; slow).
        cost_target: the target cost in the cost's unit.
        beta: cost penalty of the absolute reward, < 0.
        checkpoint_every: steps between checkpoints.
        log_every: steps between progress lines.
        final_eval_batches: validation batches to evaluate the final architecture
            on with the shared weights.
        seed: seeds sampling and weight initialisation.
    """
    steps: int = 1000
    warmup_steps: int = 200
    weight_optimizer: str = "sgd"
    weight_learning_rate: float = 0.05
    momentum: float = 0.9
    label_smoothing: float = 0.1
    controller_learning_rate: float = 0.05
    baseline_momentum: float = 0.95
    cost: str = "flops"
    cost_target: float = 5.0
    beta: float = -0.5
    checkpoint_every: int = 50
    log_every: int = 10
    final_eval_batches: int = 4
    seed: int = 0


@dataclasses.dataclass
class NasConfig:
    """One architecture search; the top level of a ``configs/search/*.yaml`` file."""
    space: SpaceConfig = dataclasses.field(default_factory=SpaceConfig)
    model: CandidateConfig = dataclasses.field(default_factory=CandidateConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    search: LoopConfig = dataclasses.field(default_factory=LoopConfig)


_CHOICES = {
    "space.preset": ("movinet", "custom"),
    "model.conv_type": ("3d", "2plus1d", "3d_2plus1d"),
    "model.se_type": ("3d", "2d", "2plus3d", "none"),
    "search.weight_optimizer": ("sgd", "adam", "rmsprop"),
    "search.cost": COST_KINDS,
}


def _convert(value, tp, key):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise TypeError(f"Config key {key!r} expects a mapping, got {value!r}.")
        return _from_dict(tp, value, key)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"Config key {key!r} expects a list, got {value!r}.")
        (item,) = typing.get_args(tp)
        return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"Config key {key!r} expects true/false, got {value!r}.")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"Config key {key!r} expects an int, got {value!r}.")
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"Config key {key!r} expects a number, got {value!r}.")
        return float(value)
    if tp is str:
        # Ratios such as 3 or 2.5 may be written as numbers.
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise TypeError(f"Config key {key!r} expects a string, got {value!r}.")
        return str(value)
    raise TypeError(f"Config key {key!r} has an unsupported type {tp!r}.")


def _from_dict(cls, values, section=""):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        key = f"{section}.{name}" if section else str(name)
        if name not in fields:
            close = difflib.get_close_matches(str(name), list(fields), n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"Unknown config key {key!r}.{hint} Valid keys"
                             f"{' of ' + repr(section) if section else ''}: {', '.join(fields)}.")
        if cls is DataConfig:
            kwargs[name] = _convert(value, hints[name], key)
            continue
        converted = _convert(value, hints[name], key)
        if key in _CHOICES and converted not in _CHOICES[key]:
            raise ValueError(f"Config key {key!r} is {converted!r}; expected one of "
                             f"{', '.join(_CHOICES[key])}.")
        kwargs[name] = converted
    return cls(**kwargs)


def build_space(space_cfg):
    """The `SearchSpace` of a `SpaceConfig`."""
    if space_cfg.preset == "movinet":
        return space_lib.movinet_space()
    return space_lib.SearchSpace(
        stem_widths=tuple(space_cfg.stem_widths),
        block_widths=tuple(tuple(w) for w in space_cfg.block_widths),
        max_layers=tuple(space_cfg.max_layers), expand_ratios=tuple(space_cfg.expand_ratios),
        kernels=tuple(space_cfg.kernels), head_widths=tuple(space_cfg.head_widths),
        classifier_filters=space_cfg.classifier_filters, min_layers=space_cfg.min_layers)


def _validate(cfg):
    loop = cfg.search
    for key in ("steps", "checkpoint_every", "log_every", "final_eval_batches"):
        if getattr(loop, key) < 1:
            raise ValueError(f"Config key 'search.{key}' must be >= 1, got {getattr(loop, key)}.")
    if not 0 <= loop.warmup_steps <= loop.steps:
        raise ValueError(f"search.warmup_steps ({loop.warmup_steps}) must be in 0..search.steps "
                         f"({loop.steps}).")
    if loop.beta >= 0:
        raise ValueError(f"search.beta must be < 0 (the cost penalty), got {loop.beta}.")
    if loop.cost_target <= 0:
        raise ValueError(f"search.cost_target must be > 0, got {loop.cost_target}.")
    for key in ("weight_learning_rate", "controller_learning_rate"):
        if getattr(loop, key) <= 0:
            raise ValueError(f"search.{key} must be > 0, got {getattr(loop, key)}.")
    if loop.cost == "tflite_latency" and not cfg.model.stream:
        raise ValueError("search.cost=tflite_latency measures the streaming model; set "
                         "model.stream=true.")
    if not 0.0 <= cfg.model.dropout_rate < 1.0:
        raise ValueError(f"model.dropout_rate must be in [0, 1), got {cfg.model.dropout_rate}.")
    build_space(cfg.space)  # raises ValueError naming a bad space entry
    validate_data_config(cfg.data)
    return cfg


def config_from_dict(values):
    """Builds and checks a `NasConfig` from a plain mapping.

    Raises:
        ValueError: unknown key (with the valid keys), a value outside its
            choices, or inconsistent values.
        TypeError: a value of the wrong type.
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise TypeError(f"A search config must be a mapping, got {type(values).__name__}.")
    return _validate(_from_dict(NasConfig, values))


def load_config(path, overrides=()):
    """Reads a search YAML (a path, or a name in ``configs/search/``), applies ``--set`` overrides.

    Raises:
        FileNotFoundError, ValueError, TypeError: naming the file or key at fault.
    """
    import pathlib
    candidate = pathlib.Path(path)
    if not candidate.is_file():
        name = candidate.name if candidate.suffix in (".yaml", ".yml") else candidate.name + ".yaml"
        for directory in experiment_config.config_dirs():
            if (directory / "search" / name).is_file():
                candidate = directory / "search" / name
                break
        else:
            raise FileNotFoundError(f"Search config {str(path)!r} is neither a file nor a name "
                                    "in configs/search/.")
    with open(candidate, encoding="utf-8") as f:
        try:
            values = yaml.safe_load(f)
        except yaml.YAMLError as error:
            raise ValueError(f"Search config {str(candidate)!r} is not valid YAML: {error}"
                             ) from error
    values = experiment_config.apply_overrides(values, overrides)
    try:
        return config_from_dict(values)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{error} (config file: {candidate})") from error


def config_to_yaml(cfg):
    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False, default_flow_style=None)
