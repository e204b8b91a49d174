"""The run contract: what a training run leaves in ``model_dir`` and how it is read back.

A run folder (`python -m movinet_tf.train`) holds the resolved config as
``config.yaml`` and `tf.train.CheckpointManager` checkpoints whose model
weights are keyed by `weights_by_name`. An ensemble run holds its own
``config.yaml`` and one run folder per member (``member<i>/``). Training,
evaluation and the exporters all go through this module to find, compare,
restore and lock runs, so every one of them gives the same errors.

    cfg, model, checkpoint = load_run("runs/tiny")      # single model or ensemble
    restore(model, "runs/tiny/ckpt-6")                  # names and shapes must match
    with lock_run("runs/tiny"):                         # one training per folder
        ...
"""
import dataclasses
import errno
import fcntl
import os

import tensorflow as tf
from absl import logging

import movinet_tf
from movinet_tf import config as config_lib
from movinet_tf.ensemble import TemporalEnsemble

CONFIG_FILE = "config.yaml"
MEMBER_DIR = "member{}"

# Config keys that may differ between a run's saved config and the one a later
# command uses: they change how long or how often things happen, or what
# evaluation measures, never which weights the checkpoints hold or what data
# they were trained on.
_FREE_SECTIONS = ("train", "eval", "runtime")
_FREE_DATA_KEYS = ("eval_batch_size", "eval_num_clips", "eval_num_crops", "num_parallel_calls",
                   "shuffle_buffer")
# Train keys that do change the model's weights layout (and so the checkpoints).
_MODEL_TRAIN_KEYS = ("freeze_backbone",)


def member_dir(model_dir, index):
    """The run folder of ensemble member `index` inside an ensemble's `model_dir`."""
    return os.path.join(model_dir, MEMBER_DIR.format(index))


# ------------------------------------------------------------------ names


def weights_by_name(model):
    """Every weight of `model` keyed by its path minus the model name.

    E.g. ``backbone/block1_layer0/feature/kernel``. Checkpoints store weights
    under these flat names rather than Keras' object graph, so every weight,
    trainable or not, is saved, and a checkpoint of an a0 model restores into
    another a0 model whatever the models are called. Fine-tuning picks the
    ``backbone/`` ones.

    Raises:
        ValueError: if two weights share a name.
    """
    named = {}
    for weight in model.weights:
        key = weight.path.split("/", 1)[1] if "/" in weight.path else weight.path
        if key in named:
            raise ValueError(f"Two weights of {model.name} are both named {key!r}.")
        named[key] = weight
    return named


def checkpoint_weight_shapes(prefix):
    """``{weight name: shape}`` of the model weights stored in checkpoint `prefix`.

    Raises:
        ValueError: if the file is not a readable checkpoint.
    """
    try:
        shapes = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as error:
        raise ValueError(f"Checkpoint {prefix!r} is not readable: "
                         f"{str(error).strip().splitlines()[0]}") from error
    stored = {}
    for key, shape in shapes.items():
        if key.startswith("model/") and key.endswith("/.ATTRIBUTES/VARIABLE_VALUE"):
            # Object-graph names escape '/' inside a dict key as '.S' (and '.' as '..').
            name = key[len("model/"):-len("/.ATTRIBUTES/VARIABLE_VALUE")]
            stored[name.replace(".S", "/").replace("..", ".")] = list(shape)
    return stored


# ------------------------------------------------------------------ paths


def resolve_checkpoint(path, what="checkpoint"):
    """A checkpoint prefix from a prefix or a run folder (its latest checkpoint).

    Args:
        path: ``runs/x/ckpt-100`` or ``runs/x``.
        what: how the message names `path` (e.g. "train.init_checkpoint").

    Raises:
        FileNotFoundError: naming `path` and what is missing there.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(
                f"{what} {path!r} is a folder without a checkpoint (no 'checkpoint' index file "
                "written by training).")
        return latest
    if not os.path.exists(path + ".index"):
        if not os.path.exists(path) and not os.path.isdir(os.path.dirname(path) or "."):
            raise FileNotFoundError(f"{what} {path!r} does not exist.")
        raise FileNotFoundError(
            f"{what} {path!r} is not a checkpoint (no {path + '.index'!r}); give a run folder "
            "or a checkpoint prefix such as runs/x/ckpt-100.")
    return path


def find_config(path):
    """The ``config.yaml`` of the run that `path` (a run folder or checkpoint prefix) is in, or None."""
    path = os.fspath(path)
    directory = path if os.path.isdir(path) else os.path.dirname(path)
    candidate = os.path.join(directory, CONFIG_FILE)
    return candidate if os.path.isfile(candidate) else None


# ------------------------------------------------------------------ models


def model_from_config(cfg, kernel_l2=0.0):
    """The MoViNet of ``cfg.model`` with the classes of ``cfg.data`` (random weights).

    Args:
        cfg: an `ExperimentConfig`.
        kernel_l2: the L2 factor on conv kernels (training only; it adds losses,
            not weights).

    Raises:
        ValueError: a model setting the layers refuse (e.g. dropout 1.5).
    """
    overrides = {key: value for key, value in dataclasses.asdict(cfg.model).items()
                 if key not in ("model_id", "stream") and value is not None}
    if kernel_l2:
        overrides["kernel_l2"] = kernel_l2
    return movinet_tf.build_model(cfg.model.model_id, stream=cfg.model.stream,
                                  num_classes=cfg.data.num_classes, **overrides)


def restore(model, path, strict=True, only=None, what="checkpoint"):
    """Restores the weights of training checkpoint `path` into `model`.

    Args:
        model: the built model.
        path: a checkpoint prefix or a run folder (latest checkpoint).
        strict: also refuse checkpoint weights the model lacks.
        only: restore only the weights whose name starts with this (e.g. "backbone/").
        what: how messages name `path`.

    Returns:
        The checkpoint prefix restored.

    Raises:
        FileNotFoundError: no checkpoint at `path`.
        ValueError: the checkpoint does not fit the model; one message lists the
            weights missing on either side and the shapes that differ.
    """
    prefix = resolve_checkpoint(path, what)
    named = weights_by_name(model)
    if only:
        named = {k: v for k, v in named.items() if k.startswith(only)}
    stored = checkpoint_weight_shapes(prefix)
    if only:
        stored = {k: v for k, v in stored.items() if k.startswith(only)}
    missing = sorted(set(named) - set(stored))
    extra = sorted(set(stored) - set(named)) if strict else []
    wrong = sorted(k for k in set(named) & set(stored) if list(named[k].shape) != stored[k])
    if missing or extra or wrong:
        details = []
        if missing:
            details.append(f"{len(missing)} model weight(s) not in the checkpoint, e.g. "
                           f"{missing[:3]}")
        if extra:
            details.append(f"{len(extra)} checkpoint weight(s) the model lacks, e.g. {extra[:3]}")
        if wrong:
            name = wrong[0]
            details.append(f"{len(wrong)} shape mismatch(es), e.g. {name!r}: checkpoint "
                           f"{stored[name]}, model {list(named[name].shape)}")
        raise ValueError(
            f"{what} {prefix!r} does not fit {model.name} ({len(named)} weights): "
            + "; ".join(details) + ". Is it a checkpoint of this architecture?")
    status = tf.train.Checkpoint(model=named).restore(prefix)
    status.expect_partial()  # The optimizer and the data position are not needed here.
    status.assert_existing_objects_matched()
    logging.info("Restored %d weights of %s from %s.", len(named), model.name, prefix)
    return prefix


def load_ensemble(cfg, model_dir):
    """The `TemporalEnsemble` of a trained ensemble folder (members in ``member<i>/``)."""
    members = []
    for index in range(cfg.ensemble.members):
        member = model_from_config(config_lib.member_config(cfg, index))
        restore(member, member_dir(model_dir, index), what=f"ensemble member {index}")
        members.append(member)
    return TemporalEnsemble(members, name="temporal_ensemble")


def build_and_restore(cfg, checkpoint):
    """``(model, checkpoint restored)`` of `cfg`: a single model, or an ensemble's members.

    Args:
        cfg: an `ExperimentConfig`.
        checkpoint: a run folder or checkpoint prefix (for an ensemble, its
            folder with ``member<i>/``); None gives random weights (single
            models only).

    Raises:
        FileNotFoundError, ValueError: see `restore`.
    """
    if cfg.ensemble.members > 1:
        if checkpoint is None or not os.path.isdir(checkpoint):
            raise ValueError(
                "An ensemble config needs its run folder (with member0/ .. "
                f"member{cfg.ensemble.members - 1}/) as the checkpoint; got {checkpoint!r}.")
        return load_ensemble(cfg, checkpoint), os.fspath(checkpoint)
    model = model_from_config(cfg)
    return model, (restore(model, checkpoint) if checkpoint is not None else None)


def load_run(model_dir, overrides=(), allow_config_change=False, checkpoint=None):
    """The saved config, the model and the restored checkpoint of a run folder.

    Args:
        model_dir: a run folder (single model or ensemble) with ``config.yaml``.
        overrides: ``--set`` strings applied to the saved config; a change of
            model or data keys is refused unless `allow_config_change`.
        allow_config_change: see `check_config_change`.
        checkpoint: which checkpoint to restore (default: the latest in `model_dir`).

    Returns:
        ``(cfg, model, checkpoint)``: checkpoint is the prefix restored (the
        folder itself for an ensemble).

    Raises:
        FileNotFoundError: no such folder, no config.yaml, no checkpoint.
        ValueError: the checkpoint does not fit the saved config.
    """
    cfg = saved_config(model_dir, overrides, allow_config_change)
    model, restored = build_and_restore(cfg, checkpoint if checkpoint is not None else model_dir)
    return cfg, model, restored


# ------------------------------------------------------------------ config


def saved_config(model_dir, overrides=(), allow_config_change=False):
    """The config saved in run folder `model_dir`, with `overrides` checked and applied.

    Raises:
        FileNotFoundError: `model_dir` or its config.yaml is missing.
        ValueError: an override changes model or data keys (without
            `allow_config_change`), or does not validate.
    """
    model_dir = os.fspath(model_dir)
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"Run folder {model_dir!r} does not exist.")
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{model_dir!r} has no {CONFIG_FILE}: it is not a run folder of "
                                "python -m movinet_tf.train.")
    saved = config_lib.load_config(path)
    if not overrides:
        return saved
    cfg = config_lib.load_config(path, list(overrides))
    check_config_change(saved, cfg, model_dir, allow_config_change)
    return cfg


def config_changes(saved, cfg):
    """``[(key, saved value, new value)]`` for keys that change the model or data of a run.

    Keys of ``train``/``eval``/``runtime`` (steps, checkpoint cadence, eval
    modes...) and a few data keys that only affect evaluation throughput may
    differ; everything else describes the checkpoints and may not.
    """
    old, new = config_lib.config_to_dict(saved), config_lib.config_to_dict(cfg)
    changes = []
    for section in old:
        for key in old[section]:
            a, b = old[section][key], new[section].get(key)
            if a == b:
                continue
            if section in _FREE_SECTIONS and key not in _MODEL_TRAIN_KEYS:
                continue
            if section == "data" and key in _FREE_DATA_KEYS:
                continue
            changes.append((f"{section}.{key}", a, b))
    return changes


def check_config_change(saved, cfg, model_dir, allow=False, source="the config given"):
    """Refuses `cfg` for run folder `model_dir` if it changes model or data keys of `saved`.

    Raises:
        ValueError: listing the differing keys and the way out.
    """
    changes = config_changes(saved, cfg)
    if not changes:
        return
    shown = ", ".join(f"{k} ({_short(a)} -> {_short(b)})" for k, a, b in changes[:6])
    more = f" and {len(changes) - 6} more" if len(changes) > 6 else ""
    if allow:
        logging.warning("%s changes %s of the run in %s (allowed by --allow_config_change).",
                        source, shown + more, model_dir)
        return
    raise ValueError(
        f"{source} differs from {os.path.join(model_dir, CONFIG_FILE)} in {shown}{more}; "
        "these keys describe the trained model or its data. Drop --config/--set to use the "
        "saved config, use another --model_dir, or pass --allow_config_change.")


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ------------------------------------------------------------------ lock


class RunLocked(OSError):
    """Another process is training in the same run folder."""


class lock_run:
    """Holds an exclusive lock on run folder `model_dir` (a context manager).

    The lock is `flock` on the folder itself, so no file is left behind; the
    kernel drops it when the process exits, however it exits, so a killed run
    never blocks the next one.

    Raises:
        RunLocked: another process holds the lock.
    """

    def __init__(self, model_dir):
        self.model_dir = os.fspath(model_dir)
        self._fd = None

    def __enter__(self):
        fd = os.open(self.model_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunLocked(
                    f"Another process is training in {self.model_dir!r} (it holds the run's "
                    "lock); wait for it to finish or use another --model_dir.") from None
            raise
        self._fd = fd
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        return False
