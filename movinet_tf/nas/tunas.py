"""The one-shot search loop (TuNAS-style), resumable, with its outputs.

Each step:

1. samples an architecture (during warm-up: first the widest, deepest one
   with random kernels for ``search.largest_steps``, then uniformly; after it
   from the controller) and trains the shared supernet weights on one train batch;
2. after warm-up, samples another architecture from the controller, scores it
   on ``search.reward_batches`` validation batches with the shared weights
   (quality = top-1 accuracy; BatchNorm per ``search.reward_bn``, see `score`),
   prices it (`cost.FlopsCost` or `cost.TfliteLatency`) and updates the
   controller with the absolute reward ``quality + beta * |cost/target - 1|``.

Checkpoints (supernet weights and optimizer, controller, step) are written by
`tf.train.CheckpointManager`, whose index file is replaced atomically, so a kill
at any moment leaves the previous checkpoint usable; running the same command
again resumes from it. The data iterators restart at a resume (their position
is not saved); the architecture samples are seeded by step and do not change.

Outputs in the output directory:

* ``config.yaml``: the resolved search config.
* ``searched_spec.yaml``: the found architecture, as a trainer config fragment
  (``model.block_specs``); `load_spec_yaml` reads it back as a spec string.
* ``train_searched.yaml``: a complete training config for it on the search's data.
* ``summary.json``: the architecture, its cost, the supernet's validation accuracy
  for it, the controller's final probabilities, and the search's history; with
  ``search.rerank_candidates``, the candidates `movinet_tf.nas.rerank` fine-tunes
  (it then rewrites the three result files for the best of them).
"""
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from movinet_tf import atomic_io
from movinet_tf import checkpoints
from movinet_tf import config as experiment_config
from movinet_tf import data as data_lib
from movinet_tf import strict_yaml
from movinet_tf.models import specs as specs_lib
from movinet_tf.nas import config as nas_config
from movinet_tf.nas import cost as cost_lib
from movinet_tf.nas.controller import Controller, absolute_reward
from movinet_tf.nas.supernet import Supernet
from movinet_tf.nas.traced import TracedSupernet
from movinet_tf.training import optimizer as optimizer_lib

SPEC_FILE = "searched_spec.yaml"
TRAIN_CONFIG_FILE = "train_searched.yaml"
SUMMARY_FILE = "summary.json"
HISTORY_FILE = "history.json"


def build_candidate(cfg, spec_text, **model_overrides):
    """A standalone `MovinetClassifier` of a spec, built from its trainer config (random weights)."""
    return checkpoints.model_from_config(
        nas_config.trainer_config(cfg, spec_text, model_overrides=model_overrides))


def make_cost(cfg):
    """The cost function (spec -> cost in the config's unit) of a search config."""
    if cfg.search.cost == "flops":
        return cost_lib.FlopsCost(cfg.data.image_size, nas_config.cost_settings(cfg))
    return cost_lib.TfliteLatency(cfg.data.image_size,
                                  lambda text: build_candidate(cfg, text, dropout_rate=0.0))


def spec_yaml(spec_text, comment=""):
    """The text of a spec YAML: a trainer config fragment with ``model.block_specs``."""
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    # Literal block style keeps one spec line per YAML line.
    lines = ["model:", "  model_id: searched", "  block_specs: |"]
    lines += [f"    {line}" for line in spec_text.splitlines()]
    return header + "\n".join(lines) + "\n"


def load_spec_yaml(path):
    """Reads ``model.block_specs`` from a spec YAML (or a training config); returns the spec text.

    Raises:
        ValueError: if the file has no ``model.block_specs`` or it does not parse.
    """
    with open(path, encoding="utf-8") as f:
        values = strict_yaml.read_yaml(f, str(path)) or {}
    text = (values.get("model") or {}).get("block_specs") if isinstance(values, dict) else None
    if not text:
        raise ValueError(f"{path}: no 'model.block_specs' entry; expected a file written by "
                         "movinet_tf.search (searched_spec.yaml).")
    return specs_lib.format_spec(specs_lib.parse_spec(text))


def _accuracy(logits, labels):
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))


def score(supernet, spec, batches, bn="batch", calibration=None):
    """Top-1 accuracy of architecture `spec` with the shared weights, and the number of clips.

    Args:
        supernet: a `TracedSupernet` (one traced graph for every architecture) or a
            `Supernet` (eager `Supernet.forward`, same results, slower).
        spec: the architecture.
        batches: (video, labels) pairs to score on; no dropout.
        bn: 'batch': every batch is normalised with its own statistics;
            'recalibrated': with statistics measured on `calibration` first
            (`Supernet.recalibrate`), as the standalone model would use.
        calibration: [B, T, H, W, 3] training clips, for ``bn='recalibrated'``.

    Returns:
        (accuracy, clips).
    """
    if bn == "recalibrated":
        if calibration is None:
            raise ValueError("score(bn='recalibrated') needs calibration clips.")
        supernet.recalibrate(spec, calibration)
    elif bn != "batch":
        raise ValueError(f"Unknown BatchNorm mode {bn!r}; expected 'batch' or 'recalibrated'.")
    if isinstance(supernet, TracedSupernet):
        forward = lambda video: supernet.logits(video, spec, batch_stats=bn == "batch")  # noqa: E731
    else:
        forward = lambda video: supernet.forward(  # noqa: E731
            video, spec, training=False, batch_stats=bn == "batch")
    correct = total = 0
    for video, labels in batches:
        logits = forward(video)
        correct += int(np.sum(np.argmax(logits.numpy(), -1) == np.asarray(labels)))
        total += len(labels)
    return correct / max(total, 1), total


VALIDATION_SHUFFLE = 512


def validation_batches(data_cfg, seed, split=None):
    """The validation split's (or `split`'s) single-clip views in seeded mixed-class batches.

    The evaluation pipeline keeps the split's order, i.e. sorted by class, so a batch of
    16 holds one or two classes; scored with its own BatchNorm statistics
    (``reward_bn: batch``) nearly one class's mean would be subtracted. The clips are
    shuffled (a new order each pass; over the whole split when it has at most
    `VALIDATION_SHUFFLE` videos), so every batch holds a mix.
    """
    dataset = data_lib.build_dataset(data_cfg, split or data_cfg.eval_split, training=False)
    return (dataset.unbatch()
            .shuffle(VALIDATION_SHUFFLE, seed=seed, reshuffle_each_iteration=True)
            .batch(data_cfg.eval_batch_size))


def weight_schedule(loop):
    """The shared weights' learning rate: linear warm-up to the peak, then cosine decay to 0."""
    if not loop.weight_warmup_steps:
        return keras.optimizers.schedules.CosineDecay(loop.weight_learning_rate, loop.steps)
    return keras.optimizers.schedules.CosineDecay(
        0.0, loop.steps - loop.weight_warmup_steps, warmup_target=loop.weight_learning_rate,
        warmup_steps=loop.weight_warmup_steps)


def build_supernet(cfg):
    """The `Supernet` of a search config (random weights)."""
    return Supernet(
        nas_config.build_space(cfg.space), cfg.data.num_classes, causal=cfg.model.stream,
        conv_type=cfg.model.conv_type, se_type=cfg.model.se_type,
        activation=cfg.model.activation, gating_activation=cfg.model.gating_activation,
        classifier_activation=cfg.model.classifier_activation,
        dropout_rate=cfg.model.dropout_rate, name="supernet")


CHECKPOINT_DIR = "checkpoints"


def search_checkpoint(supernet, **objects):
    """The `tf.train.Checkpoint` of a search: the supernet's weights by name, and `objects`.

    The supernet is stored as `checkpoints.weights_by_name` (every weight under its
    own name, the BatchNorm statistics included), not as the Keras layer: a Keras 3
    layer that keeps its weights in a dict is not part of TensorFlow's object graph,
    so ``Checkpoint(supernet=supernet)`` saved none of them (the checkpoints before
    this fix hold only the trainable ones, through the optimizer).
    """
    return tf.train.Checkpoint(supernet=checkpoints.weights_by_name(supernet), **objects)


def restore_supernet(cfg, search_dir):
    """The `Supernet` of a search directory, from its last checkpoint; every weight must be there.

    Raises:
        FileNotFoundError: no checkpoint in ``<search_dir>/checkpoints``.
        ValueError: the checkpoint lacks supernet weights (e.g. one written before the
            supernet was stored by name) or does not fit `cfg`.
    """
    supernet = build_supernet(cfg)
    latest = tf.train.latest_checkpoint(os.path.join(search_dir, CHECKPOINT_DIR))
    if latest is None:
        raise FileNotFoundError(f"No search checkpoint in {search_dir}/{CHECKPOINT_DIR}.")
    try:
        search_checkpoint(supernet).restore(latest).expect_partial() \
            .assert_existing_objects_matched()
    except AssertionError as error:
        # The assertion lists every unmatched weight with its value: too long for one line.
        logging.debug("Unmatched supernet weights: %s", error)
        raise ValueError(f"{latest} does not hold every supernet weight of this config "
                         "(written before the supernet was stored by name, or for another "
                         "space).") from None
    return supernet


def run_search(cfg, output_dir, report=None, stop_after=None):
    """Runs (or resumes) a search and writes its outputs.

    Args:
        cfg: a `NasConfig`.
        output_dir: where checkpoints and outputs go; a checkpoint there is resumed.
        report: optional callable(dict) called with each progress record (the CLI
            prints them).
        stop_after: stop after this many steps of this run without writing the
            final outputs (for tests of resuming); None runs to the end.

    Returns:
        The summary dict (also written to ``summary.json``), or None when stopped
        early by `stop_after`.
    """
    os.makedirs(output_dir, exist_ok=True)
    atomic_io.write_text(os.path.join(output_dir, "config.yaml"),
                         nas_config.config_to_yaml(cfg))
    loop = cfg.search
    keras.utils.set_random_seed(loop.seed)
    space = nas_config.build_space(cfg.space)
    supernet = build_supernet(cfg)
    optimizer = optimizer_lib.build_optimizer(loop.weight_optimizer, weight_schedule(loop),
                                              momentum=loop.momentum)
    optimizer.build(supernet.trainable_weights)
    controller = Controller(space, loop.controller_learning_rate, loop.baseline_momentum)
    step = tf.Variable(0, dtype=tf.int64, name="step")
    checkpoint = search_checkpoint(supernet, optimizer=optimizer, controller=controller,
                                   step=step)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(output_dir, CHECKPOINT_DIR),
                                         max_to_keep=2, step_counter=step)
    history = []
    history_path = os.path.join(output_dir, HISTORY_FILE)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        if os.path.exists(history_path):
            with open(history_path, encoding="utf-8") as f:
                history = [h for h in json.load(f) if h["step"] <= int(step)]
        logging.info("Resumed the search from %s at step %d.", manager.latest_checkpoint,
                     int(step))
        if report:
            report({"event": "resumed", "step": int(step), "checkpoint": manager.latest_checkpoint})

    cost_fn = make_cost(cfg)
    train_data = iter(data_lib.build_dataset(cfg.data, cfg.data.train_split, training=True)
                      .repeat())
    val_data = iter(validation_batches(cfg.data, cfg.search.seed).repeat())
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True,
                                                   label_smoothing=loop.label_smoothing)
    # Every architecture through one traced graph (nas/traced.py); gradients clipped
    # to norm 5 per tensor.
    traced = TracedSupernet(supernet, optimizer, loss_fn, clip_norm=5.0)

    def train_weights(spec, video, labels):
        loss, logits = traced.train_step(video, labels, spec)
        return float(loss), _accuracy(logits.numpy(), labels)

    def calibrate():
        return next(train_data)[0] if loop.reward_bn == "recalibrated" else None

    def probe(current):
        # Uniformly sampled architectures, each on its own validation batch: the
        # supernet's accuracy on the space as a whole, warm-up included.
        rng = np.random.default_rng([loop.seed, current, 2])
        accuracies = [score(traced, space.decode(space.sample(rng)), [next(val_data)],
                            loop.reward_bn, calibrate())[0]
                      for _ in range(loop.probe_architectures)]
        return float(np.mean(accuracies))

    window = []
    run_steps = 0
    start = time.time()
    while int(step) < loop.steps:
        current = int(step)
        if current < loop.largest_steps:
            weight_indices = space.sample_widest(np.random.default_rng([loop.seed, current, 0]))
        elif current < loop.warmup_steps:
            weight_indices = space.sample(np.random.default_rng([loop.seed, current, 0]))
        else:
            weight_indices = controller.sample((loop.seed, current, 0))
        video, labels = next(train_data)
        loss, train_acc = train_weights(space.decode(weight_indices), video, labels)
        record = {"step": current + 1, "loss": loss, "train_top1": train_acc}
        if current >= loop.warmup_steps:
            indices = controller.sample((loop.seed, current, 1))
            spec = space.decode(indices)
            quality, _ = score(traced, spec, [next(val_data) for _ in range(loop.reward_batches)],
                               loop.reward_bn, calibrate())
            cost = cost_fn(spec)
            reward = absolute_reward(quality, cost, loop.cost_target, loop.beta)
            update = controller.update(indices, reward)
            record.update(quality=quality, cost=cost, reward=reward,
                          baseline=update["baseline"], entropy=controller.entropy())
        step.assign_add(1)
        run_steps += 1
        window.append(record)
        if (current + 1) % loop.log_every == 0 or current + 1 == loop.steps:
            summary = {"step": current + 1, "seconds": round(time.time() - start, 1)}
            if loop.probe_architectures:
                summary["probe_top1"] = probe(current)
            for key in ("loss", "train_top1", "quality", "cost", "reward", "baseline", "entropy"):
                values = [r[key] for r in window if key in r]
                if values:
                    summary[key] = float(np.mean(values))
            likely = space.decode(controller.most_likely())
            summary["argmax_cost"] = cost_fn(likely)
            history.append(summary)
            window = []
            logging.debug("search %s", summary)
            if report:
                report({"event": "progress", **summary})
        if (current + 1) % loop.checkpoint_every == 0 or current + 1 == loop.steps:
            manager.save(checkpoint_number=current + 1)
            atomic_io.write_text(history_path, json.dumps(history))
        if stop_after is not None and run_steps >= stop_after:
            return None

    return _finish(cfg, space, traced, controller, cost_fn, val_data, calibrate(), history,
                   output_dir, report, time.time() - start)


def _finish(cfg, space, traced, controller, cost_fn, val_data, calibration, history,
            output_dir, report, seconds):
    """Evaluates the most likely architecture and writes the outputs."""
    indices = controller.most_likely()
    spec = space.decode(indices)
    text = specs_lib.format_spec(spec)
    accuracy, total = score(traced, spec,
                            [next(val_data) for _ in range(cfg.search.final_eval_batches)],
                            cfg.search.reward_bn, calibration)
    probabilities = controller.probabilities()
    chosen = [float(p[i]) for p, i, used in zip(probabilities, indices, space.used_mask(indices))
              if used]
    summary = {
        "block_specs": text,
        "cost": cost_fn(spec),
        "cost_unit": cost_fn.unit,
        "cost_target": cfg.search.cost_target,
        "supernet_val_top1": accuracy,
        "supernet_val_clips": total,
        "controller_entropy": controller.entropy(),
        "mean_chosen_probability": float(np.mean(chosen)),
        "log10_space_size": space.log10_size(),
        "space": space.to_dict(),
        "steps": cfg.search.steps,
        "seconds_this_run": round(seconds, 1),
        "history": history,
    }
    if cfg.search.rerank_candidates:
        summary["candidates"] = rerank_candidates(cfg, controller, cost_fn)
    write_outputs(cfg, output_dir, summary)
    if report:
        report({"event": "done", **{k: v for k, v in summary.items()
                                    if k not in ("history", "space", "candidates")}})
    return summary


def rerank_candidates(cfg, controller, cost_fn):
    """The architectures `nas.rerank` fine-tunes: the most likely, then the next within the cost window.

    Returns:
        list of dicts with ``block_specs``, ``cost`` and ``log_probability``
        (of the controller), at most ``search.rerank_candidates`` of them.
    """
    loop = cfg.search
    space = controller.space

    def within(indices):
        return abs(cost_fn(space.decode(indices)) / loop.cost_target - 1) <= loop.rerank_cost_tolerance

    likely = controller.likely_architectures(loop.rerank_candidates, (loop.seed, loop.steps, 3),
                                             keep=within)
    return [{"block_specs": specs_lib.format_spec(space.decode(indices)),
             "cost": cost_fn(space.decode(indices)), "log_probability": log_p}
            for indices, log_p in likely]


def write_outputs(cfg, output_dir, summary):
    """Writes the search's result files for ``summary['block_specs']``, each whole or not at all."""
    text = summary["block_specs"]
    comment = (f"Found by python -m movinet_tf.search ({cfg.search.steps} steps); cost "
               f"{summary['cost']:.3f} {summary['cost_unit']} (target {cfg.search.cost_target}).\n"
               f"Train it: python -m movinet_tf.train --config {TRAIN_CONFIG_FILE} (next to this file).")
    atomic_io.write_text(os.path.join(output_dir, SPEC_FILE),
                         spec_yaml(text, comment))
    train_cfg = nas_config.trainer_config(cfg, text)
    experiment_config.save_config(train_cfg, os.path.join(output_dir, TRAIN_CONFIG_FILE))
    atomic_io.write_text(os.path.join(output_dir, SUMMARY_FILE),
                         json.dumps(summary, indent=2))
