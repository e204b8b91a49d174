"""Standalone training of a candidate architecture: the yardstick of the search benchmarks.

Every contender of `nas.compare` and every architecture of
`benchmarks/nas_ranking.py` is trained from scratch by the trainer
(``python -m movinet_tf.train``, one process per run so that no TensorFlow
state leaks from one into the next) with the same recipe, `recipe`: the
quickstart's (``configs/a0_stream_builtin.yaml``: Adam, peak learning rate
0.002 at batch 8, linear warm-up then cosine decay, gradient clipping 1.0,
label smoothing 0.1, L2 3e-5), scaled to the step budget, then evaluated on
the search's validation split (one centre clip per video).

A run whose final evaluation file exists is not trained again, so an
interrupted benchmark resumes where it stopped (the trainer itself resumes a
half-finished run from its last checkpoint).

The same recipe also fine-tunes a contender from given starting weights
(``init_weights``: e.g. its slice of the supernet, written by
`ranking.write_shared_weights`), the fine-tuned ranking of
`benchmarks/nas_ranking.py`.
"""
import dataclasses
import json
import os
import subprocess
import sys
import time

from movinet_tf import cli
from movinet_tf import config as experiment_config
from movinet_tf.nas import config as nas_config


# The contenders' recipe is the quickstart's, read from its config, so the two cannot drift.
QUICKSTART_CONFIG = "a0_stream_builtin"
# The model keys every contender is built with, on top of the search's model section.
MODEL_OVERRIDES = {"stochastic_depth_drop_rate": 0.0}


def recipe(steps, seed):
    """The ``train`` section every standalone contender is trained with.

    The quickstart config's ``train`` section, with its warm-up kept at the same
    share of the steps (100 of 1200) and checkpoints and logs scaled to `steps`.
    """
    quickstart = experiment_config.load_config(QUICKSTART_CONFIG).train
    share = quickstart.warmup_steps / quickstart.steps
    return {**dataclasses.asdict(quickstart), "steps": steps, "seed": seed,
            "warmup_steps": max(1, round(steps * share)),
            "checkpoint_every": max(1, min(steps, 100)), "keep_checkpoints": 1,
            "log_every": max(1, steps // 10)}


def training_config(search_cfg, block_specs, steps, seed=0, init_weights=None,
                    recalibration_batches=0):
    """The trainer config of one contender: the search's model and data settings, `recipe`.

    With `init_weights` (a ``.weights.h5`` file of the whole contender) the
    training starts from those weights instead of random ones; with
    `recalibration_batches` its BatchNorm statistics are re-measured on that
    many training batches after the last step.
    """
    train_values = recipe(steps, seed)
    if init_weights:
        train_values.update(init_checkpoint=os.path.abspath(init_weights),
                            init_checkpoint_modules="all")
    if recalibration_batches:
        train_values["bn_recalibration_batches"] = recalibration_batches
    return nas_config.trainer_config(
        search_cfg, block_specs, model_id="contender", model_overrides=dict(MODEL_OVERRIDES),
        train=train_values, eval={"modes": ["clip"]})


def train(search_cfg, block_specs, steps, seed, run_dir, quiet=True, init_weights=None,
          recalibration_batches=0):
    """Trains one contender in its own process (or reads its finished result).

    Args:
        search_cfg: the `NasConfig` whose model and data settings it uses.
        block_specs: the architecture's spec text.
        steps: training steps.
        seed: the trainer's seed (weights, data order).
        run_dir: the trainer's model directory; its config is written beside
            it as ``<run_dir>.yaml``.
        quiet: send the trainer's progress to ``<run_dir>.log`` instead of
            the terminal.
        init_weights, recalibration_batches: see `training_config` (fine-tuning).

    Returns:
        dict with ``val_top1``, ``val_top5``, ``seconds`` (wall clock of this
        call; 0 when the result was already there) and ``cpu_seconds`` (of
        the trainer process).

    Raises:
        cli.UserError: if the training fails (its log is named).
    """
    result_path = os.path.join(run_dir, f"eval_step{steps}.json")
    start = time.time()
    cpu_seconds = 0.0
    if not os.path.exists(result_path):
        config_path = run_dir.rstrip("/") + ".yaml"
        experiment_config.save_config(
            training_config(search_cfg, block_specs, steps, seed, init_weights,
                            recalibration_batches), config_path)
        command = [sys.executable, "-m", "movinet_tf.train", "--config", config_path,
                   "--model_dir", run_dir, "--mode", "train_and_eval"]
        log_path = run_dir.rstrip("/") + ".log"
        with open(log_path if quiet else os.devnull, "a", encoding="utf-8") as log:
            process = subprocess.Popen(command, stdout=log if quiet else None,
                                       stderr=subprocess.STDOUT if quiet else None)
            # wait4 gives this child's own CPU time, also while other trainings run.
            _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        cpu_seconds = usage.ru_utime + usage.ru_stime
        if process.returncode:
            where = f"; see {log_path}" if quiet else " (printed above)"
            raise cli.UserError(f"training {run_dir} failed (exit status {process.returncode})"
                                f"{where}.")
    with open(result_path, encoding="utf-8") as f:
        metrics = json.load(f)["clip"]
    return {"val_top1": metrics["top1"], "val_top5": metrics["top5"],
            "seconds": round(time.time() - start, 1), "cpu_seconds": round(cpu_seconds, 1)}
