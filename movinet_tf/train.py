"""Train and evaluate a MoViNet from a YAML config: ``python -m movinet_tf.train``.

    python -m movinet_tf.train --config a0_stream_builtin --model_dir runs/a0_builtin
    python -m movinet_tf.train --config a0_stream --set data.path=/data/k600 \\
        --set data.batch_size=32 --mode train_and_eval

Flags:
    --config     a shipped config name (``configs/<name>.yaml``) or a YAML path.
    --model_dir  where checkpoints, TensorBoard events, ``config.yaml`` and eval
                 results go (default ``runs/<config name>``).
    --mode       ``train``, ``eval`` or ``train_and_eval`` (default).
    --set        ``key=value`` override, repeatable, e.g. ``--set train.steps=100``.
    --allow_config_change  let ``--config``/``--set`` change model or data keys of
                 a run whose ``model_dir`` already holds a ``config.yaml``.

A ``model_dir`` that holds a run is enough on its own: ``--mode eval`` and a
resume read its ``config.yaml`` (``--set`` still applies on top, e.g. more
steps). A ``--config`` given with it must agree with it on the model and data.
One training at a time holds a ``model_dir`` (a lock); ``config.yaml`` is
written only once the config, the data and the checkpoint have been checked,
and never by ``--mode eval``. A step whose loss or gradients are not finite
stops the run (exit status 2) before anything of it is saved.

`train_and_evaluate` reads top to bottom: checks -> strategy -> model and
optimizer -> checkpoint restore (resume or fine-tune) -> steps -> evaluation.
Each part lives in `movinet_tf.training` (one module per concern).

Resuming: restarting the same command continues from the newest checkpoint in
``model_dir`` with the same model weights, optimizer slots, step, and data
position (epoch and batches consumed in it). Checkpoints are written by
`tf.train.CheckpointManager`: the data files are complete before the small
``checkpoint`` index file is atomically replaced to point at them, so a kill at
any moment leaves the previous checkpoints usable.
"""
from movinet_tf import cli

if __name__ == "__main__":  # Before TensorFlow is imported.
    cli.quiet_tensorflow()
    cli.import_tensorflow()

import os  # noqa: E402
import shutil  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from movinet_tf import atomic_io  # noqa: E402
from movinet_tf import checkpoints  # noqa: E402
from movinet_tf import config as config_lib  # noqa: E402
from movinet_tf.checkpoints import CONFIG_FILE  # noqa: E402
from movinet_tf.training import bn_calibration  # noqa: E402
from movinet_tf.training import distribution  # noqa: E402
from movinet_tf.training import ensemble  # noqa: E402
from movinet_tf.training import evaluation  # noqa: E402
from movinet_tf.training import inputs  # noqa: E402
from movinet_tf.training import state as state_lib  # noqa: E402
from movinet_tf.training import step as step_lib  # noqa: E402
from movinet_tf.training import summaries  # noqa: E402
from movinet_tf.training.step import DivergedError  # noqa: E402,F401

FLAGS = flags.FLAGS


def define_flags():
    """Defines the CLI flags (called by `run`; importing this module registers none)."""
    flags.DEFINE_string("config", None,
                        "Config name in configs/ (e.g. a0_stream_builtin) or a YAML path.")
    flags.DEFINE_string("model_dir", None, "Output directory (default: runs/<config name>).")
    flags.DEFINE_enum("mode", "train_and_eval", ["train", "eval", "train_and_eval"],
                      "What to run.")
    flags.DEFINE_multi_string("set", [], "Override, key=value with a dotted key; repeatable.")
    flags.DEFINE_integer("member", None, "Ensemble configs only: train just this member "
                         "(0-based); default: every member in order, each resuming from its "
                         "own checkpoint.")
    flags.DEFINE_bool("allow_config_change", False,
                      "Let --config/--set change model or data keys of the run saved in "
                      "--model_dir (its checkpoints must still fit).")


def train_and_evaluate(cfg, model_dir, mode="train_and_eval", allow_config_change=False):
    """Runs training and/or evaluation for one experiment.

    Everything that can be checked is checked before `model_dir` is touched:
    the data, a ``config.yaml`` already there (its model and data keys must
    match `cfg` unless `allow_config_change`), the checkpoint to resume or
    evaluate. Training then holds `model_dir`'s lock (`checkpoints.lock_run`)
    and writes ``config.yaml`` with the first checkpoint.

    Args:
        cfg: the resolved `ExperimentConfig`.
        model_dir: output directory; an existing checkpoint there is resumed.
        mode: 'train', 'eval' or 'train_and_eval'.
        allow_config_change: see `checkpoints.check_config_change`.

    Returns:
        The last evaluation results (dict mode -> metrics), or {} when none ran.

    Raises:
        DivergedError: a training step was not finite (nothing of it saved).
        ValueError, OSError: bad data, config, checkpoint or model_dir.
    """
    # 1. Checks, before anything is built or written.
    distribution.configure_devices(cfg.runtime)
    inputs.check_data_source(cfg.data)
    training = mode in ("train", "train_and_eval")
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise FileExistsError(f"--model_dir {model_dir!r} is a file, not a folder.")
    saved_path = os.path.join(model_dir, CONFIG_FILE)
    if os.path.isfile(saved_path):
        checkpoints.check_config_change(config_lib.load_config(saved_path), cfg, model_dir,
                                        allow_config_change)

    # 2. Strategy, and which checkpoint this process resumes from.
    strategy = distribution.make_strategy(cfg.runtime)
    chief = distribution.is_chief(strategy)
    own_dir = distribution.worker_dir(model_dir, strategy)
    latest = tf.train.latest_checkpoint(own_dir) if os.path.isdir(own_dir) else None
    if not training and latest is None and not cfg.train.init_checkpoint:
        raise FileNotFoundError(
            f"--mode=eval found no checkpoint in {model_dir!r} and train.init_checkpoint is "
            "empty: nothing to evaluate.")
    distribution.check_global_batch(cfg.data.batch_size, strategy, cfg.runtime.strategy)
    keras.utils.set_random_seed(cfg.train.seed)
    keras.mixed_precision.set_dtype_policy(cfg.runtime.mixed_precision)
    logging.info("Strategy %s with %d replica(s); global batch %d; peak lr %.6g.",
                 cfg.runtime.strategy, strategy.num_replicas_in_sync, cfg.data.batch_size,
                 config_lib.learning_rate(cfg))

    # 3. Model, optimizer and counters; restored (or initialised) before model_dir is
    # created or locked, so a bad checkpoint leaves nothing behind.
    state = state_lib.make_training_state(cfg, strategy)
    state_lib.restore_or_init(cfg, state, latest)
    if not training:
        return _evaluate(cfg, state.model, int(state.step), own_dir, chief)

    os.makedirs(own_dir, exist_ok=True)
    if not os.access(own_dir, os.W_OK):
        raise PermissionError(f"--model_dir {own_dir!r} is not writable.")
    with checkpoints.lock_run(own_dir):
        manager = tf.train.CheckpointManager(
            state.checkpoint, own_dir, max_to_keep=cfg.train.keep_checkpoints,
            step_counter=state.step)
        if manager.latest_checkpoint != latest:  # A run that held the lock saved since.
            state_lib.restore_or_init(cfg, state, manager.latest_checkpoint)
        results = _train(cfg, state, strategy, manager, own_dir, chief, mode)
    if not chief and not cfg.runtime.keep_worker_checkpoints:
        # Non-chief workers must save too (saving is collective), but only the chief's copy is kept.
        shutil.rmtree(own_dir, ignore_errors=True)
    return results


def _train(cfg, state, strategy, manager, out_dir, chief, mode):
    """4. The steps, checkpoints and periodic evaluation; see `train_and_evaluate`."""
    train = cfg.train
    model, step, epoch, batch_in_epoch = state.model, state.step, state.epoch, state.batch_in_epoch
    train_step = step_lib.make_train_step(cfg, model, state.optimizer, strategy)
    log = summaries.TrainLog(out_dir, train.steps, int(step), train.log_every, chief)
    per_replica_batch = cfg.data.batch_size // strategy.num_replicas_in_sync
    saved_config = False
    results = {}
    iterator = None
    empty_epochs = 0
    logging.info("Training from step %d to %d.", int(step), train.steps)
    while int(step) < train.steps:
        if iterator is None:
            iterator = inputs.train_iterator(cfg, strategy, epoch, batch_in_epoch)
        batch = iterator.get_next_as_optional()
        if not batch.has_value():  # The end of a pass over the training split.
            if int(batch_in_epoch) == 0:
                empty_epochs += 1
                if empty_epochs > 1:
                    raise ValueError(
                        f"data split {cfg.data.train_split!r} yields no full batch of {per_replica_batch} "
                        "per replica (unreadable videos are skipped and logged above); "
                        "lower data.batch_size, or add or fix videos.")
            logging.info("Epoch %d done after %d steps.", int(epoch), int(batch_in_epoch))
            epoch.assign_add(1)
            batch_in_epoch.assign(0)
            iterator = None
            continue
        empty_epochs = 0
        stats = train_step(*batch.get_value())
        current = int(step) + 1
        try:
            step_lib.check_finite(current, stats, state.optimizer, manager.latest_checkpoint)
        except DivergedError:
            print(flush=True)  # End the progress bar's line.
            raise
        step.assign_add(1)
        batch_in_epoch.assign_add(1)
        log.update(current, stats, float(state.optimizer.learning_rate))
        if current == train.steps and train.bn_recalibration_batches:
            bn_calibration.recalibrate_on_training_data(model, cfg)  # Saved just below.
        if current % train.checkpoint_every == 0 or current == train.steps:
            step_lib.check_weights(current, model, manager.latest_checkpoint)
            if chief and not saved_config:  # config.yaml goes with the first checkpoint.
                _save_resolved_config(cfg, out_dir)
                saved_config = True
            logging.info("Saved checkpoint %s.", manager.save(checkpoint_number=current))
        if (mode == "train_and_eval" and train.eval_every
                and current % train.eval_every == 0 and current < train.steps):
            results = _evaluate(cfg, model, current, out_dir, chief)
    logging.info("Training stopped at step %d; the train step was traced %d time(s).",
                 int(step), train_step.experimental_get_tracing_count())
    if mode == "train_and_eval":
        results = _evaluate(cfg, model, int(step), out_dir, chief)
    return results


def _evaluate(cfg, model, step, out_dir, chief):
    """5. Every mode of ``cfg.eval.modes``, printed side by side and saved (chief only)."""
    if not chief:
        return {}
    results = evaluation.evaluate(model, cfg)
    print(evaluation.format_results(results))
    summaries.save_eval(out_dir, step, results)
    return results


def _save_resolved_config(cfg, out_dir):
    """Writes config.yaml atomically when it is new or differs (already checked by the caller)."""
    path = os.path.join(out_dir, CONFIG_FILE)
    text = config_lib.config_to_yaml(cfg)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    atomic_io.write_text(path, text)


# ------------------------------------------------------------------- CLI


def resolve_config(config, model_dir, overrides=(), allow_config_change=False):
    """The config of a command and its model_dir.

    With ``config`` None, `model_dir`'s saved ``config.yaml`` is the config
    (``overrides`` apply on top and may not change model or data keys unless
    `allow_config_change`). A `config` given with a model_dir that holds a run
    is checked against it the same way, before its data is looked for.

    Raises:
        app.UsageError: neither a config nor a run folder.
        FileNotFoundError, ValueError, TypeError: see `config.load_config`.
    """
    if not config:
        if not model_dir or not os.path.isfile(os.path.join(model_dir, CONFIG_FILE)):
            where = (f"--model_dir {model_dir!r} holds no {CONFIG_FILE}" if model_dir
                     else "no --model_dir")
            raise app.UsageError(
                f"--config is required ({where}), e.g. --config a0_stream_builtin. Shipped "
                "configs: " + ", ".join(config_lib.available_configs()))
        return checkpoints.saved_config(model_dir, overrides, allow_config_change), model_dir
    cfg = config_lib.load_config(config, overrides)
    model_dir = model_dir or os.path.join("runs", os.path.splitext(os.path.basename(config))[0])
    saved = checkpoints.find_config(model_dir) if os.path.isdir(model_dir) else None
    if saved is not None:
        checkpoints.check_config_change(config_lib.load_config(saved), cfg, model_dir,
                                        allow_config_change, source=f"--config {config}")
    return cfg, model_dir


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    cfg, model_dir = resolve_config(FLAGS.config, FLAGS.model_dir, FLAGS.set,
                                    FLAGS.allow_config_change)
    inputs.check_data_source(cfg.data)
    if cfg.ensemble.members > 1:
        ensemble.train_ensemble(cfg, model_dir, FLAGS.mode, FLAGS.member,
                                train_member=train_and_evaluate,
                                allow_config_change=FLAGS.allow_config_change)
        return
    if FLAGS.member is not None:
        raise app.UsageError("--member is for ensemble configs (ensemble.members >= 2).")
    train_and_evaluate(cfg, model_dir, FLAGS.mode, FLAGS.allow_config_change)


def run():
    """Console-script entry point (``movinet-train``)."""
    cli.quiet_tensorflow()
    define_flags()
    # A full disk, a read-only or unreadable file: the user's to fix, one line too.
    cli.run(main, user_errors=(*cli.USER_ERRORS, tf.errors.ResourceExhaustedError,
                               tf.errors.PermissionDeniedError, tf.errors.DataLossError))


if __name__ == "__main__":
    run()
