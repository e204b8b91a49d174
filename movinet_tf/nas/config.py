"""Typed, strict configs of an architecture search (``python -m movinet_tf.search``).

A search YAML has four sections: ``space`` (the `SearchSpace`), ``model`` (how
candidates are built: stream or base, conv and SE types, activations), ``data``
(the data pipeline's own `DataConfig`) and ``search`` (the TuNAS loop). Unknown
keys are errors that name the key, the valid keys and the closest match; a value
of the wrong type is a `TypeError` naming the key. ``--set search.steps=10``
overrides use the trainer's override syntax.
"""
import dataclasses
import typing

import yaml

from movinet_tf import config as experiment_config
from movinet_tf import strict_yaml
from movinet_tf.data.config import DataConfig, validate_config as validate_data_config
from movinet_tf.nas import space as space_lib
from movinet_tf.nas.cost import COST_KINDS


def _choices(*values):
    return {"choices": tuple(values)}


@dataclasses.dataclass
class SpaceConfig:
    """The search space. ``preset: movinet`` is the paper's space (`movinet_space`);
    ``preset: custom`` uses the lists below (see `SearchSpace` for their meaning)."""
    preset: str = dataclasses.field(default="movinet", metadata=_choices("movinet", "custom"))
    stem_widths: typing.List[int] = dataclasses.field(default_factory=lambda: [8])
    block_widths: typing.List[typing.List[int]] = dataclasses.field(
        default_factory=lambda: [[8, 16], [16, 24], [24, 32], [24, 32], [32, 48]])
    max_layers: typing.List[int] = dataclasses.field(default_factory=lambda: [2, 3, 3, 3, 3])
    # Ratios such as 3, 2.5 or '8/3' (text for fractions).
    expand_ratios: typing.List[typing.Union[str, int, float]] = dataclasses.field(
        default_factory=lambda: ["2", "3", "4"])
    kernels: typing.List[str] = dataclasses.field(
        default_factory=lambda: [space_lib.kernel_text(k) for k in space_lib.KERNELS])
    head_widths: typing.List[int] = dataclasses.field(default_factory=lambda: [64, 96])
    classifier_widths: typing.List[int] = dataclasses.field(default_factory=lambda: [128])
    min_layers: int = 1


@dataclasses.dataclass
class CandidateConfig:
    """How every candidate architecture is built (as ``build_model`` arguments)."""
    stream: bool = True
    conv_type: str = dataclasses.field(default="2plus1d",
                                       metadata=_choices("3d", "2plus1d", "3d_2plus1d"))
    se_type: str = dataclasses.field(default="2plus3d",
                                     metadata=_choices("3d", "2d", "2plus3d", "none"))
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
        largest_steps: the first of the warm-up steps train the widest, deepest
            architecture only, kernels sampled (`SearchSpace.sample_widest`),
            before uniform sampling starts: the full network first, as
            Once-for-All's progressive shrinking does.
        weight_optimizer: 'sgd' (with momentum), 'adam' or 'rmsprop'.
        weight_learning_rate: peak learning rate of the shared weights (linear
            warm-up over `weight_warmup_steps`, then cosine decay to 0).
        weight_warmup_steps: steps of the learning-rate warm-up.
        momentum: momentum of sgd / rmsprop.
        label_smoothing: of the shared weights' cross-entropy.
        controller_learning_rate: Adam learning rate of the controller logits.
        reward_batches: validation batches each reward is measured on (more
            clips, less noise, slower steps).
        reward_bn: 'batch' (batch statistics of the scored clips) or
            'recalibrated' (statistics of one training batch, measured for the
            sampled architecture before it is scored).
        probe_architectures: at every log step, this many uniformly sampled
            architectures are scored on one validation batch each with the
            shared weights (``probe_top1`` in the history: does the supernet
            learn?); 0 turns it off.
        baseline_momentum: of the reward's moving-average baseline.
        cost: 'flops' (multiply-adds per frame, in millions) or
            'tflite_latency' (ms per frame of the streaming TFLite model; slow).
        cost_target: the target cost in the cost's unit.
        beta: cost penalty of the absolute reward, < 0.
        checkpoint_every: steps between checkpoints.
        log_every: steps between progress lines.
        final_eval_batches: validation batches to evaluate the final architecture
            on with the shared weights.
        rerank_candidates: after the last step, the controller's most likely
            architecture and the next most likely ones within
            `rerank_cost_tolerance` of `cost_target`, this many in all, are each
            fine-tuned `rerank_steps` steps from their slice of the shared
            weights (the standalone recipe, `movinet_tf.nas.rerank`) and the
            best on the validation clips is the search's result; 0 keeps the
            controller's most likely architecture.
        rerank_steps: fine-tuning steps of each re-ranked candidate.
        rerank_cost_tolerance: largest ``|cost / cost_target - 1|`` of a
            re-ranked candidate (the most likely one is always a candidate).
        seed: seeds sampling and weight initialisation.
    """
    steps: int = 1000
    warmup_steps: int = 200
    largest_steps: int = 0
    weight_optimizer: str = dataclasses.field(default="sgd",
                                              metadata=_choices("sgd", "adam", "rmsprop"))
    weight_learning_rate: float = 0.05
    weight_warmup_steps: int = 0
    momentum: float = 0.9
    label_smoothing: float = 0.1
    controller_learning_rate: float = 0.05
    reward_batches: int = 1
    reward_bn: str = dataclasses.field(default="batch", metadata=_choices("batch", "recalibrated"))
    probe_architectures: int = 0
    baseline_momentum: float = 0.95
    cost: str = dataclasses.field(default="flops", metadata=_choices(*COST_KINDS))
    cost_target: float = 5.0
    beta: float = -0.5
    checkpoint_every: int = 50
    log_every: int = 10
    final_eval_batches: int = 4
    rerank_candidates: int = 0
    rerank_steps: int = 200
    rerank_cost_tolerance: float = 0.05
    seed: int = 0


@dataclasses.dataclass
class NasConfig:
    """One architecture search; the top level of a ``configs/search/*.yaml`` file."""
    space: SpaceConfig = dataclasses.field(default_factory=SpaceConfig)
    model: CandidateConfig = dataclasses.field(default_factory=CandidateConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    search: LoopConfig = dataclasses.field(default_factory=LoopConfig)


def build_space(space_cfg):
    """The `SearchSpace` of a `SpaceConfig`."""
    if space_cfg.preset == "movinet":
        return space_lib.movinet_space()
    return space_lib.SearchSpace(
        stem_widths=tuple(space_cfg.stem_widths),
        block_widths=tuple(tuple(w) for w in space_cfg.block_widths),
        max_layers=tuple(space_cfg.max_layers), expand_ratios=tuple(space_cfg.expand_ratios),
        kernels=tuple(space_cfg.kernels), head_widths=tuple(space_cfg.head_widths),
        classifier_widths=tuple(space_cfg.classifier_widths), min_layers=space_cfg.min_layers)


def _validate(cfg):
    loop = cfg.search
    for key in ("steps", "checkpoint_every", "log_every", "final_eval_batches", "reward_batches"):
        if getattr(loop, key) < 1:
            raise ValueError(f"Config key 'search.{key}' must be >= 1, got {getattr(loop, key)}.")
    if not 0 <= loop.warmup_steps <= loop.steps:
        raise ValueError(f"search.warmup_steps ({loop.warmup_steps}) must be in 0..search.steps "
                         f"({loop.steps}).")
    if not 0 <= loop.largest_steps <= loop.warmup_steps:
        raise ValueError(f"search.largest_steps ({loop.largest_steps}) must be in "
                         f"0..search.warmup_steps ({loop.warmup_steps}).")
    if not 0 <= loop.weight_warmup_steps < loop.steps:
        raise ValueError(f"search.weight_warmup_steps ({loop.weight_warmup_steps}) must be in "
                         f"0..search.steps - 1 ({loop.steps - 1}).")
    if loop.probe_architectures < 0:
        raise ValueError(f"search.probe_architectures must be >= 0, got "
                         f"{loop.probe_architectures}.")
    if loop.rerank_candidates < 0:
        raise ValueError(f"search.rerank_candidates must be >= 0, got {loop.rerank_candidates}.")
    if loop.rerank_steps < 1:
        raise ValueError(f"search.rerank_steps must be >= 1, got {loop.rerank_steps}.")
    if not loop.rerank_cost_tolerance > 0:
        raise ValueError(f"search.rerank_cost_tolerance must be > 0, got "
                         f"{loop.rerank_cost_tolerance}.")
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
    return _validate(strict_yaml.from_dict(NasConfig, values))


def load_config(path, overrides=()):
    """Reads a search YAML (a path, or a name in ``configs/search/``), applies ``--set`` overrides.

    The same strict loader as the training configs (`movinet_tf.strict_yaml`).

    Raises:
        FileNotFoundError, ValueError, TypeError: naming the file or key at fault.
    """
    search_dirs = [d / "search" for d in experiment_config.config_dirs() if (d / "search").is_dir()]
    candidate = strict_yaml.find_yaml(path, search_dirs, what="Search config")
    _, values = strict_yaml.load_yaml_file(candidate, overrides)
    try:
        return config_from_dict(values)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{error} (config file: {candidate})") from error


def trainer_model_values(cfg, block_specs, model_id="searched", **overrides):
    """The ``model`` section of a trainer config (`movinet_tf.config.ModelConfig`) for a candidate.

    The one place the search's candidate settings become model keys: the
    searched model, the baselines of `movinet_tf.nas.compare` and the
    candidates the latency cost builds all come from it.
    """
    values = {"model_id": model_id, "block_specs": block_specs,
              **dataclasses.asdict(cfg.model), "use_positional_encoding": False}
    values.update(overrides)
    return values


def trainer_config(cfg, block_specs, model_id="searched", model_overrides=None, **sections):
    """A checked `ExperimentConfig` for a candidate on the search's data.

    Args:
        cfg: the `NasConfig`.
        block_specs: the candidate's spec text.
        model_id: the name the trainer gives it.
        model_overrides: more ``model`` keys (e.g. ``{"dropout_rate": 0.0}``).
        **sections: other trainer sections as plain mappings (``train=...``, ``eval=...``).
    """
    values = {"model": trainer_model_values(cfg, block_specs, model_id, **(model_overrides or {})),
              "data": dataclasses.asdict(cfg.data), **sections}
    return experiment_config.config_from_dict(values)


def cost_settings(cfg):
    """The model settings `movinet_tf.nas.cost` and `nas.scaling` count a spec's MACs with."""
    return dict(conv_type=cfg.model.conv_type, se_type=cfg.model.se_type,
                causal=cfg.model.stream, num_classes=cfg.data.num_classes)


def config_to_yaml(cfg):
    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False, default_flow_style=None)
