"""Training and evaluating temporal ensembles (configs with ``ensemble.members >= 2``).

`python -m movinet_tf.train --config X` with an ensemble config lands here:

* Each member trains independently, with `movinet_tf.train.train_and_evaluate`,
  into ``model_dir/member<i>``, on the config of `config.member_config`: 1/N of
  the frames at N times the stride, so the same span of video. ``--member i``
  trains only member i; a plain run trains them in order, and a member that
  finished (or half finished) resumes from its own last checkpoint.
* Evaluation reads full-rate clips of the eval split once and scores, on the
  same clips: the full-rate single model of ``ensemble.baseline_model_dir`` (if
  given), each member alone on its frames (member i: frames i, i + N, ...), and
  the ensemble (the members' logits averaged before the softmax), with the
  multiply-adds per video of each.
"""
import dataclasses
import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from movinet_tf import atomic_io
from movinet_tf import checkpoints
from movinet_tf import config as config_lib
from movinet_tf import data as data_lib
from movinet_tf.checkpoints import load_ensemble, member_dir
from movinet_tf.training.evaluation import topk_accuracy
from movinet_tf.models.flops import count_flops

RESULTS_FILE = "ensemble_eval.json"


def train_ensemble(cfg, model_dir, mode="train_and_eval", member=None, *, train_member,
                   allow_config_change=False):
    """Trains the members (all, or only `member`), then evaluates the ensemble.

    Args:
        cfg: an `ExperimentConfig` with ``ensemble.members >= 2``.
        model_dir: the ensemble's directory; members go to ``member<i>/``.
        mode: 'train', 'eval' or 'train_and_eval'.
        member: train only this member (int), or None for all.
        train_member: ``f(member_cfg, member_dir, mode=..., allow_config_change=...)``
            that trains one model (`movinet_tf.train.train_and_evaluate`).
        allow_config_change: let `cfg` change model or data keys of a saved run.

    Returns:
        The evaluation results (see `evaluate_ensemble`), or {} when none ran.
    """
    members = cfg.ensemble.members
    if member is not None and not 0 <= member < members:
        raise ValueError(f"--member {member} does not exist: the ensemble has {members} "
                         f"members (0..{members - 1}).")
    saved_path = os.path.join(model_dir, checkpoints.CONFIG_FILE)
    if os.path.isfile(saved_path):
        checkpoints.check_config_change(config_lib.load_config(saved_path), cfg, model_dir,
                                        allow_config_change)
    if mode in ("train", "train_and_eval"):
        os.makedirs(model_dir, exist_ok=True)
        with checkpoints.lock_run(model_dir):
            for index in ([member] if member is not None else range(members)):
                member_cfg = config_lib.member_config(cfg, index)
                print(f"\n=== ensemble member {index} of {members}: {member_cfg.model.model_id}, "
                      f"{member_cfg.data.num_frames} frames at stride "
                      f"{member_cfg.data.temporal_stride} -> {member_dir(model_dir, index)} ===",
                      flush=True)
                train_member(member_cfg, member_dir(model_dir, index), mode="train",
                             allow_config_change=allow_config_change)
                # Written once a member trained: the members' own configs were checked.
                atomic_io.write_text(saved_path, config_lib.config_to_yaml(cfg))
    if mode == "train" or member is not None:
        return {}
    results = evaluate_ensemble(cfg, model_dir)
    print(format_table(results))
    try:
        atomic_io.write_text(os.path.join(model_dir, RESULTS_FILE),
                                     json.dumps(results, indent=2))
    except OSError as error:
        logging.warning("Could not save %s in %s: %s", RESULTS_FILE, model_dir, error)
    return results


def _load_baseline(cfg, baseline_dir):
    """The full-rate single model of `baseline_dir`, checked against the ensemble's data."""
    what = "ensemble.baseline_model_dir"
    if checkpoints.find_config(baseline_dir) is None:
        raise ValueError(f"{what} {baseline_dir!r} has no {checkpoints.CONFIG_FILE}: expected a "
                         "movinet_tf.train model_dir.")
    base_cfg, model, _ = checkpoints.load_run(baseline_dir)
    same = ("num_classes", "image_size", "temporal_stride")
    differ = [k for k in same if getattr(base_cfg.data, k) != getattr(cfg.data, k)]
    if differ:
        raise ValueError(f"{what} {baseline_dir!r} was trained with other "
                         f"data settings ({', '.join('data.' + k for k in differ)}); the "
                         "baseline must see the same full-rate clips.")
    return model


def evaluate_ensemble(cfg, model_dir, max_batches=None):
    """Scores baseline, members and ensemble on the same full-rate eval clips.

    Returns:
        dict with ``rows``: a list of {name, model, frames, top1, top5, videos,
        gmacs_per_video}, in table order.
    """
    ensemble = load_ensemble(cfg, model_dir)
    count = cfg.ensemble.members
    frames = cfg.eval.num_frames or cfg.data.num_frames
    data_cfg = dataclasses.replace(cfg.data, num_frames=frames, eval_num_clips=1, eval_num_crops=1)
    dataset = data_lib.build_dataset(data_cfg, cfg.data.eval_split, training=False)
    baseline = None
    if cfg.ensemble.baseline_model_dir:
        baseline = _load_baseline(cfg, cfg.ensemble.baseline_model_dir)
    else:
        logging.info("No ensemble.baseline_model_dir: the table has no full-rate single model.")

    calls = [tf.function(lambda video, m=m: m(video, training=False), reduce_retracing=True)
             for m in ensemble.members]
    baseline_call = (tf.function(lambda video: baseline(video, training=False),
                                 reduce_retracing=True) if baseline is not None else None)
    member_logits = [[] for _ in range(count)]
    baseline_logits, labels = [], []
    limit = max_batches if max_batches is not None else cfg.eval.max_batches
    for batch_index, (video, label) in enumerate(dataset):
        if limit and batch_index >= limit:
            break
        for index in range(count):
            member_logits[index].append(calls[index](video[:, index::count]).numpy())
        if baseline_call is not None:
            baseline_logits.append(baseline_call(video).numpy())
        labels.append(label.numpy())
    labels = np.concatenate(labels)
    member_logits = [np.concatenate(parts) for parts in member_logits]
    ensemble_logits = np.mean(member_logits, axis=0)  # Averaged before any softmax.

    size = cfg.data.image_size
    rows = []

    def row(name, model_name, num_frames, logits, gmacs):
        rows.append({"name": name, "model": model_name, "frames": int(num_frames),
                     "top1": topk_accuracy(logits, labels, 1),
                     "top5": topk_accuracy(logits, labels, 5), "videos": int(len(labels)),
                     "gmacs_per_video": float(gmacs)})

    if baseline is not None:
        row("single model, full rate", baseline.name, frames,
            np.concatenate(baseline_logits),
            count_flops(baseline, [1, frames, size, size, 3]) / 1e9)
    member_gmacs = []
    for index, member in enumerate(ensemble.members):
        member_frames = frames // count
        member_gmacs.append(count_flops(member, [1, member_frames, size, size, 3]) / 1e9)
        row(f"member {index} alone (frames {index}, {index + count}, ...)", member.name,
            member_frames, member_logits[index], member_gmacs[-1])
    row(f"ensemble of {count} (mean logits)", ensemble.name, frames, ensemble_logits,
        sum(member_gmacs))
    return {"split": cfg.data.eval_split, "rows": rows}


def format_table(results):
    """The evaluation rows as an aligned text table."""
    lines = [f"{'model':<40} {'frames':>6} {'videos':>6} {'top1':>7} {'top5':>7} "
             f"{'GMACs/video':>12}"]
    for row in results["rows"]:
        lines.append(f"{row['name']:<40} {row['frames']:>6} {row['videos']:>6} "
                     f"{row['top1']:>7.4f} {row['top5']:>7.4f} {row['gmacs_per_video']:>12.4f}")
    return "\n".join(lines)
