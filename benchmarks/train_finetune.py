"""Fine-tuning on the builtin set: from one of our runs and from an official-format checkpoint.

    python benchmarks/train_finetune.py --source_run runs/quickstart
    python benchmarks/train_finetune.py --source_run runs/quickstart --steps 300 --rows ours_frozen

The target task is the builtin set drawn with another generator seed
(``data.builtin_seed``, default 1; the quickstart trains on seed 0): the same ten
classes in 750 new videos, so a backbone trained on seed 0 has seen none of them.
Each row trains the quickstart model (configs/a0_stream_builtin.yaml) for
``--steps`` steps in its own ``python -m movinet_tf.train`` process, with a new
classifier (``train.init_checkpoint_modules=backbone``), and prints val top-1 of
the three evaluation modes and the process's CPU seconds:

* ``ours_frozen`` / ``ours_full``: from ``--source_run``'s latest checkpoint,
  with the backbone frozen (``train.freeze_backbone=true``) or trained too.
* ``official_frozen`` / ``official_full``: from a TF Model Garden checkpoint of
  A0-Stream written by the official code (tests/reference/official_runner.py,
  needs ``make -f Makefile.reference install-reference``) with **random**
  weights: the format is the published one, the weights carry no knowledge.
* ``scratch``: no init checkpoint, the same steps (what "no knowledge" scores).
"""
import json
import os
import resource
import subprocess
import sys
import tempfile

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("source_run", None, "A finished run of ours (a model_dir with checkpoints).")
flags.DEFINE_integer("steps", 300, "Fine-tuning steps per row.")
flags.DEFINE_integer("builtin_seed", 1, "Generator seed of the target builtin set.")
flags.DEFINE_float("frozen_lr", 0.002, "Peak learning rate with a frozen backbone.")
flags.DEFINE_float("full_lr", 0.0005, "Peak learning rate for a full fine-tune and from scratch.")
flags.DEFINE_list("rows", ["ours_frozen", "ours_full", "official_frozen", "official_full",
                           "scratch"], "Rows to run.")
flags.DEFINE_string("work_dir", None, "Where the runs go (default: a temporary folder).")

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RUNNER = os.path.join(_REPO, "tests", "reference", "official_runner.py")
_MODES = ("clip", "multi_clip", "stream")


def _official_random_checkpoint(work_dir):
    """Writes a random-weight official A0-Stream checkpoint (600 classes) and returns its prefix."""
    video = os.path.join(work_dir, "official_input.npy")
    np.save(video, np.random.default_rng(0).uniform(0, 1, (1, 8, 56, 56, 3)).astype(np.float32))
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = os.path.join(work_dir, "official")
    subprocess.run([sys.executable, _RUNNER, "--model_id=a0", "--causal", "--conv_type=2plus1d",
                    "--se_type=2plus3d", "--activation=hard_swish",
                    "--gating_activation=hard_sigmoid", "--num_classes=600",
                    f"--input={video}", f"--output_dir={out}"], env=env, check=True,
                   capture_output=True)
    with open(os.path.join(out, "meta.json")) as f:
        return json.load(f)["checkpoint"]


def _train(model_dir, sets):
    """Runs one training process; returns (eval results, CPU seconds of the process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [sys.executable, "-m", "movinet_tf.train", "--config", "a0_stream_builtin",
               "--model_dir", model_dir] + [a for s in sets for a in ("--set", s)]
    result = subprocess.run(command, cwd=_REPO, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(os.path.join(model_dir, f"eval_step{FLAGS.steps}.json")) as f:
        return json.load(f), cpu


def main(argv):
    del argv
    unknown = set(FLAGS.rows) - {"ours_frozen", "ours_full", "official_frozen", "official_full",
                                 "scratch"}
    if unknown:
        raise app.UsageError(f"unknown --rows {sorted(unknown)}")
    if any(r.startswith("ours") for r in FLAGS.rows) and not FLAGS.source_run:
        raise app.UsageError("--source_run is required for the ours_* rows")
    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="finetune_")
    os.makedirs(work_dir, exist_ok=True)
    inits = {}
    if FLAGS.source_run:
        inits["ours"] = os.path.abspath(FLAGS.source_run)
    if any(r.startswith("official") for r in FLAGS.rows):
        inits["official"] = _official_random_checkpoint(work_dir)
    common = [f"train.steps={FLAGS.steps}", f"data.builtin_seed={FLAGS.builtin_seed}",
              f"train.warmup_steps={min(50, FLAGS.steps // 10)}",
              f"train.checkpoint_every={FLAGS.steps}"]
    print(f"target: builtin set, generator seed {FLAGS.builtin_seed}; {FLAGS.steps} steps "
          f"per row; runs under {work_dir}")
    print(f"{'row':<17}{'init':<10}{'backbone':<10}{'lr':>8}" + "".join(f"{m:>12}" for m in _MODES)
          + f"{'CPU s':>8}", flush=True)
    for row in FLAGS.rows:
        source, _, how = row.partition("_")
        sets = list(common)
        if source != "scratch":
            sets += [f"train.init_checkpoint={inits[source]}", "train.init_checkpoint_modules=backbone"]
        frozen = how == "frozen"
        sets += [f"train.freeze_backbone={str(frozen).lower()}",
                 f"train.base_learning_rate={FLAGS.frozen_lr if frozen else FLAGS.full_lr}"]
        results, cpu = _train(os.path.join(work_dir, row), sets)
        print(f"{row:<17}{source:<10}{'frozen' if frozen else 'trained':<10}"
              f"{FLAGS.frozen_lr if frozen else FLAGS.full_lr:>8g}"
              + "".join(f"{results[m]['top1']:>12.4f}" for m in _MODES) + f"{cpu:>8.0f}",
              flush=True)


if __name__ == "__main__":
    app.run(main)
