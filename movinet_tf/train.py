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

The loop in `train_and_evaluate` reads top to bottom: strategy -> model ->
optimizer -> checkpoint restore (resume or fine-tune) -> steps -> evaluation.

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

import dataclasses  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
from tensorflow.core.framework import summary_pb2  # noqa: E402

import movinet_tf  # noqa: E402
from movinet_tf import bn_calibration  # noqa: E402
from movinet_tf import checkpoints  # noqa: E402
from movinet_tf import config as config_lib  # noqa: E402
from movinet_tf import data as data_lib  # noqa: E402
from movinet_tf import ensemble_train  # noqa: E402
from movinet_tf import evaluation  # noqa: E402
from movinet_tf import subclips  # noqa: E402
from movinet_tf.data import files  # noqa: E402
from movinet_tf.checkpoints import CONFIG_FILE, weights_by_name  # noqa: E402,F401

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


class DivergedError(ValueError):
    """Training produced a non-finite loss, gradient or weight; nothing of that step was saved."""


# ------------------------------------------------------------------ setup


def configure_devices(runtime):
    """Splits the CPU into logical devices when asked; must run before TF starts."""
    if runtime.cpu_logical_devices > 1:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * runtime.cpu_logical_devices)
    if runtime.run_eagerly:
        tf.config.run_functions_eagerly(True)


def make_strategy(runtime):
    """The `tf.distribute.Strategy` named by ``runtime.strategy``."""
    if runtime.strategy == "default":
        return tf.distribute.get_strategy()
    if runtime.strategy == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        # Without GPUs, MirroredStrategy would pick one CPU; use every logical CPU.
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    if runtime.strategy == "multi_worker_mirrored":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "runtime.strategy=multi_worker_mirrored needs the TF_CONFIG environment variable "
                "describing the cluster (see docs/training.md).")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if runtime.strategy == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=runtime.tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown runtime.strategy {runtime.strategy!r}.")


def is_chief(strategy):
    """Whether this process writes the shared outputs (always true off multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def worker_dir(model_dir, strategy):
    """Where this process writes checkpoints: model_dir for the chief, a subfolder otherwise."""
    if is_chief(strategy):
        return model_dir
    resolver = strategy.cluster_resolver
    return os.path.join(model_dir, f"{resolver.task_type}{resolver.task_id}")


def build_model(cfg):
    """Builds the MoViNet described by ``cfg.model`` with the classes of ``cfg.data``.

    The L2 penalty follows the official task: ``l2(l2_weight_decay / 2)`` on every
    conv kernel except the final classifier.
    """
    return checkpoints.model_from_config(cfg, kernel_l2=cfg.train.l2_weight_decay / 2)


def make_learning_rate(cfg):
    """The learning rate: linear warmup from 0 to the scaled peak, then cosine decay to 0.

    The peak is ``base_learning_rate * data.batch_size / base_batch_size``; with
    ``train.schedule: constant`` it is used throughout.
    """
    train = cfg.train
    peak = config_lib.learning_rate(cfg)
    if train.schedule == "constant":
        return peak
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if train.warmup_steps else peak,
        decay_steps=max(train.steps - train.warmup_steps, 1),
        alpha=0.0,
        warmup_target=peak if train.warmup_steps else None,
        warmup_steps=train.warmup_steps)


def make_optimizer(cfg):
    """The optimizer of ``cfg.train`` with the schedule of `make_learning_rate`.

    Gradient clipping is not given to Keras (which would clip each replica's
    gradient before the all-reduce); the train step clips the summed one.
    """
    train = cfg.train
    schedule = make_learning_rate(cfg)
    # A fixed name: Keras would number a second optimizer in the same process
    # ("rm_sprop_1"), and checkpoints key the slots by their variable paths.
    name = "optimizer"
    if train.optimizer == "rmsprop":
        optimizer = keras.optimizers.RMSprop(
            learning_rate=schedule, rho=train.rmsprop_rho, momentum=train.momentum,
            epsilon=train.epsilon, name=name)
    elif train.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=train.momentum, name=name)
    elif train.optimizer == "adam":
        optimizer = keras.optimizers.Adam(learning_rate=schedule, epsilon=train.epsilon, name=name)
    else:
        optimizer = keras.optimizers.AdamW(
            learning_rate=schedule, epsilon=train.epsilon, weight_decay=train.weight_decay,
            name=name)
    if cfg.runtime.mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name="loss_scale")
    return optimizer


def _is_official_checkpoint(path):
    return any("/_stem/" in name for name, _ in tf.train.list_variables(path))


def load_init_checkpoint(model, path, modules):
    """Initialises `model` (or its backbone) for fine-tuning.

    Args:
        model: the built MovinetClassifier.
        path: one of our checkpoints (a file prefix or a directory), a Keras
            ``.weights.h5`` file (modules 'all' only), or a published TF Model
            Garden checkpoint or SavedModel (read with
            `movinet_tf.load_official_checkpoint`).
        modules: 'all' or 'backbone'.

    Raises:
        ValueError: when nothing usable is at `path`.
    """
    what = "train.init_checkpoint"
    if path.endswith(".weights.h5"):
        if modules != "all":
            raise ValueError(
                f"{what} {path!r} is a .weights.h5 file, which restores the whole "
                "model only; use train.init_checkpoint_modules=all or a tf.train checkpoint.")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{what} {path!r} does not exist.")
        model.load_weights(path)
        return
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        logging.info("Loading the variables of the published SavedModel %s (%s).", path, modules)
        movinet_tf.load_official_checkpoint(model, path, skip_classifier=modules == "backbone")
        return
    prefix = checkpoints.resolve_checkpoint(path, what)
    checkpoints.checkpoint_weight_shapes(prefix)  # A readable checkpoint, or one clear error.
    if _is_official_checkpoint(prefix):
        logging.info("Loading published Model Garden checkpoint %s (%s).", prefix, modules)
        movinet_tf.load_official_checkpoint(model, prefix, skip_classifier=modules == "backbone")
        return
    logging.info("Loading checkpoint %s (%s).", prefix, modules)
    checkpoints.restore(model, prefix, strict=False,
                        only="backbone/" if modules == "backbone" else None, what=what)


def check_data_source(data_cfg):
    """Fails fast, before any model is built, when a config points at absent data.

    Raises:
        ValueError: saying which key to set (``data.path``, ``data.source``).
    """
    if data_cfg.source == "builtin":
        return
    how = ("Point the config at local data with --set data.path=... (a TFRecord glob, a "
           "class-per-folder root, a csv file, or a TFDS data_dir) and --set "
           "data.source=tfrecord|folder|csv|tfds to match its format; see docs/training.md.")
    if data_cfg.source == "tfds":
        if not data_cfg.tfds_name:
            raise ValueError(f"data.source=tfds needs data.tfds_name (e.g. ucf101). {how}")
        return
    if not data_cfg.path:
        raise ValueError(
            f"data.source={data_cfg.source!r} but data.path is empty: this config needs a "
            f"dataset that is not bundled. {how}")
    pattern = os.path.expanduser(data_cfg.path).replace("{split}", "*")
    if not glob.glob(pattern):
        raise ValueError(f"data.path {data_cfg.path!r} does not exist (nothing matches {pattern!r}). {how}")
    if data_cfg.source in ("folder", "csv"):
        _check_video_files(dataclasses.replace(data_cfg, path=os.path.expanduser(data_cfg.path)))


def _check_video_files(data_cfg):
    """The class count matches and the training videos exist, before anything is built."""
    names = data_lib.class_names(data_cfg)
    if len(names) != data_cfg.num_classes:
        raise ValueError(
            f"data.num_classes is {data_cfg.num_classes} but the {data_cfg.source} source "
            f"{data_cfg.path!r} has {len(names)} classes ({names[:5]}"
            f"{'...' if len(names) > 5 else ''}); set data.num_classes={len(names)}.")
    lister = files.list_folder if data_cfg.source == "folder" else files.list_csv
    paths, _ = lister(data_cfg, data_cfg.train_split)
    if not any(os.path.isfile(p) for p in paths):
        raise ValueError(
            f"None of the {len(paths)} videos listed for split {data_cfg.train_split!r} in "
            f"data.path {data_cfg.path!r} exists (e.g. {paths[0]!r}).")


def write_scalar(tag, value, step):
    """Writes one TensorBoard scalar to the default summary writer.

    TensorBoard itself is not a dependency (tensorflow-cpu does not bring it),
    and `tf.summary.scalar` needs it, so this writes the same event with TF's
    own `tf.summary.write` and the scalars plugin's metadata.
    """
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    metadata.data_class = summary_pb2.DATA_CLASS_SCALAR
    tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=metadata)


# ------------------------------------------------------------------ loop


def train_and_evaluate(cfg, model_dir, mode="train_and_eval", allow_config_change=False):
    """Runs training and/or evaluation for one experiment.

    Everything that can be checked is checked before `model_dir` is touched:
    the data, a ``config.yaml`` already there (its model and data keys must
    match `cfg` unless `allow_config_change`), the checkpoint to resume or
    evaluate. Training then holds `model_dir`'s lock (`checkpoints.lock_run`)
    and writes ``config.yaml`` once the checkpoint restored.

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
    configure_devices(cfg.runtime)

    check_data_source(cfg.data)
    training = mode in ("train", "train_and_eval")
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise FileExistsError(f"--model_dir {model_dir!r} is a file, not a folder.")
    saved_path = os.path.join(model_dir, CONFIG_FILE)
    if os.path.isfile(saved_path):
        checkpoints.check_config_change(config_lib.load_config(saved_path), cfg, model_dir,
                                        allow_config_change)
    strategy = make_strategy(cfg.runtime)
    chief = is_chief(strategy)
    own_dir = worker_dir(model_dir, strategy)
    latest = tf.train.latest_checkpoint(own_dir) if os.path.isdir(own_dir) else None
    if not training and latest is None and not cfg.train.init_checkpoint:
        raise FileNotFoundError(
            f"--mode=eval found no checkpoint in {model_dir!r} and train.init_checkpoint is "
            "empty: nothing to evaluate.")
    num_replicas = strategy.num_replicas_in_sync
    global_batch = cfg.data.batch_size
    if global_batch % num_replicas:
        raise ValueError(
            f"data.batch_size={global_batch} is the global batch and must divide evenly over "
            f"the {num_replicas} replicas of runtime.strategy={cfg.runtime.strategy!r}.")
    keras.utils.set_random_seed(cfg.train.seed)
    keras.mixed_precision.set_dtype_policy(cfg.runtime.mixed_precision)
    logging.info("Strategy %s with %d replica(s); global batch %d; peak lr %.6g.",
                 cfg.runtime.strategy, num_replicas, global_batch, config_lib.learning_rate(cfg))
    state = make_training_state(cfg, strategy)

    # Restored (or initialised) before model_dir is created or locked: a bad checkpoint
    # leaves nothing behind.
    _restore_or_init(cfg, state, latest)
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
            _restore_or_init(cfg, state, manager.latest_checkpoint)
        results = _train(cfg, state, strategy, manager, own_dir, chief, mode)
    if not chief and not cfg.runtime.keep_worker_checkpoints:
        # Non-chief workers must save too (saving is collective), but only the chief's copy is kept.
        shutil.rmtree(own_dir, ignore_errors=True)
    return results


def _restore_or_init(cfg, state, latest):
    """Resumes from `latest`, else initialises from ``train.init_checkpoint`` if set."""
    # Resume beats fine-tuning: after a kill, the init checkpoint was already used.
    if latest:
        restore_checkpoint(state, latest)
    elif cfg.train.init_checkpoint:
        load_init_checkpoint(state.model, cfg.train.init_checkpoint,
                             cfg.train.init_checkpoint_modules)


@dataclasses.dataclass
class TrainingState:
    """Everything a checkpoint holds: weights, optimizer slots and the position in the data."""
    model: object
    optimizer: object
    step: object            # tf.Variable int64: optimizer steps taken
    epoch: object           # tf.Variable int64: passes over the training split completed
    batch_in_epoch: object  # tf.Variable int64: batches of the current pass already used
    checkpoint: object      # tf.train.Checkpoint over all of the above


def make_training_state(cfg, strategy):
    """Builds the model, optimizer (slots created) and counters under `strategy`."""
    with strategy.scope():
        model = build_model(cfg)
        if cfg.train.freeze_backbone:
            model.backbone.trainable = False
        optimizer = make_optimizer(cfg)
        optimizer.build(model.trainable_variables)
    # The counters live on the host, outside the strategy: the Python loop updates them.
    with tf.device("/cpu:0"):
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        batch_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="batch_in_epoch")
    checkpoint = tf.train.Checkpoint(
        model=weights_by_name(model), optimizer=_optimizer_variables(optimizer),
        step=step, epoch=epoch, batch_in_epoch=batch_in_epoch)
    return TrainingState(model, optimizer, step, epoch, batch_in_epoch, checkpoint)


def _optimizer_variables(optimizer):
    named = {}
    for variable in optimizer.variables:
        if variable.path in named:
            raise ValueError(f"Two optimizer variables are both named {variable.path!r}.")
        named[variable.path] = variable
    return named


def restore_checkpoint(state, path):
    """Restores a training checkpoint into `state`; every object must match.

    The model weights are compared first (`checkpoints.restore`), so a
    checkpoint of another architecture is one message naming what differs.
    """
    checkpoints.restore(state.model, path, what="the run's checkpoint")
    state.checkpoint.restore(path).assert_existing_objects_matched()
    logging.info("Resumed from %s at step %d (epoch %d, batch %d of that epoch).",
                 path, int(state.step), int(state.epoch), int(state.batch_in_epoch))


def _train(cfg, state, strategy, manager, out_dir, chief, mode):
    """The training steps; see `train_and_evaluate`."""

    model, optimizer = state.model, state.optimizer
    step, epoch, batch_in_epoch = state.step, state.epoch, state.batch_in_epoch

    train = cfg.train
    num_classes = cfg.data.num_classes
    num_replicas = strategy.num_replicas_in_sync
    global_batch = cfg.data.batch_size
    per_replica_batch = global_batch // num_replicas
    loss_object = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=train.label_smoothing, reduction=None)
    loss_scale = getattr(optimizer, "dynamic_scale", None)

    def per_example_loss(labels, logits):
        onehot = tf.one_hot(tf.cast(labels, tf.int32), num_classes)
        return loss_object(onehot, tf.cast(logits, tf.float32))

    def reduce_gradients(grads):
        """Sum over replicas, clip each tensor, and undo the sum the optimizer will redo."""
        context = tf.distribute.get_replica_context()
        if num_replicas > 1:
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        if train.clipnorm > 0:
            scale = tf.cast(loss_scale, tf.float32) if loss_scale is not None else 1.0
            grads = [tf.clip_by_norm(g / scale, train.clipnorm) * scale for g in grads]
        if num_replicas > 1:
            grads = [g / num_replicas for g in grads]
        return grads

    def step_fn(video, labels):
        variables = model.trainable_variables
        if train.subclips > 1:
            # Sub-clips carrying stream states, gradients accumulated (movinet_tf.subclips);
            # the L2 term does not depend on the clip, so its gradient is added once.
            loss, logits, grads = subclips.subclip_loss_and_grads(
                model, video, labels,
                lambda y, z: tf.reduce_sum(per_example_loss(y, z)) / global_batch,
                train.subclips, training=True, variables=variables,
                scale_loss=optimizer.scale_loss)
            with tf.GradientTape() as tape:
                regularization = tf.add_n(model.losses) / num_replicas if model.losses else 0.0
                scaled_regularization = optimizer.scale_loss(regularization)
            if model.losses:
                extra = tape.gradient(scaled_regularization, variables)
                grads = [g if e is None else (e if g is None else g + e) for g, e in zip(grads, extra)]
            cross_entropy = loss
            loss = loss + regularization
        else:
            with tf.GradientTape() as tape:
                logits = tf.cast(model(video, training=True), tf.float32)
                cross_entropy = tf.reduce_sum(per_example_loss(labels, logits)) / global_batch
                regularization = tf.add_n(model.losses) / num_replicas if model.losses else 0.0
                loss = cross_entropy + regularization
                scaled_loss = optimizer.scale_loss(loss)
            grads = tape.gradient(scaled_loss, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        grads = reduce_gradients([g for g, _ in pairs])
        # Before clipping; with a loss scale, inf is expected now and then (the step is skipped).
        grad_norm = tf.linalg.global_norm(grads)
        optimizer.apply(grads, [v for _, v in pairs])
        labels = tf.cast(labels, tf.int32)
        top1 = tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, 1), tf.float32))
        top5 = tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, min(5, num_classes)), tf.float32))
        count = tf.cast(tf.shape(labels)[0], tf.float32)
        # The printed and logged loss is cross-entropy (label smoothing included) plus
        # the L2 term; both parts are reported too.
        return {"loss": loss, "cross_entropy": cross_entropy,
                "regularization": tf.cast(regularization, tf.float32),
                "top1": top1, "top5": top5, "count": count, "grad_norm": grad_norm}

    @tf.function
    def train_step(video, labels):
        stats = strategy.run(step_fn, args=(video, labels))
        # Per-replica losses are already divided by the global batch: their sum is the loss.
        # Every replica holds the same all-reduced gradient norm: take the mean.
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN if k == "grad_norm" else
                                   tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in stats.items()}

    def check_finite(current, stats):
        """Stops the run at the first non-finite step, before anything of it is saved."""
        loss, grad_norm = float(stats["loss"]), float(stats["grad_norm"])
        bad = []
        if not math.isfinite(loss):
            bad.append(f"the loss is {loss}")
        if loss_scale is None and not math.isfinite(grad_norm):
            bad.append(f"the gradient norm is {grad_norm}")
        if bad:
            print(flush=True)  # End the progress bar's line.
            _diverged(current, " and ".join(bad), manager)

    def check_weights(current):
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in model.weights
                                if tf.as_dtype(v.dtype).is_floating])
        if not bool(finite):
            _diverged(current, "a weight is not finite after the update", manager)

    def make_iterator():
        """A fresh pass over the training split, fast-forwarded to the saved position."""
        data_cfg = dataclasses.replace(cfg.data, batch_size=per_replica_batch)
        epoch_now, skip_steps = int(epoch), int(batch_in_epoch)

        def dataset_fn(context):
            # The pipeline's shuffles are seeded with data.seed (which also names the
            # builtin set, so it must not change). TF combines that op seed with the
            # global seed, so setting the global seed per epoch and per worker gives
            # each pass its own order, the same one again after a resume.
            tf.random.set_seed(cfg.train.seed + 7919 * epoch_now + 104729 * context.input_pipeline_id)
            dataset = data_lib.build_dataset(data_cfg, cfg.data.train_split, training=True)
            per_pipeline = num_replicas // context.num_input_pipelines
            return dataset.skip(skip_steps * per_pipeline)

        return iter(strategy.distribute_datasets_from_function(dataset_fn))

    writers = []  # Created at the first log, so a run that fails before it leaves no file.

    def writer():
        if not writers:
            writers.append(tf.summary.create_file_writer(os.path.join(out_dir, "train")) if chief
                           else tf.summary.create_noop_writer())
        return writers[0]

    saved_config = []

    def save(current):
        """A checkpoint, after the weights are checked; config.yaml goes with the first one."""
        check_weights(current)
        if chief and not saved_config:
            _save_resolved_config(cfg, out_dir)
            saved_config.append(True)
        return manager.save(checkpoint_number=current)

    # Losses are shown as means over the current log window (Progbar's own means run
    # from the first step, which hides how the loss moves).
    losses = ("loss", "cross_entropy", "regularization")
    progbar = keras.utils.Progbar(train.steps, stateful_metrics=["lr", *losses],
                                  verbose=1 if chief else 0)
    window = {"top1": 0.0, "top5": 0.0, "count": 0.0, "steps": 0, **dict.fromkeys(losses, 0.0)}
    results = {}
    iterator = None
    empty_epochs = 0
    start_step, start_time = int(step), time.time()
    logging.info("Training from step %d to %d.", start_step, train.steps)
    while int(step) < train.steps:
        if iterator is None:
            iterator = make_iterator()
        batch = iterator.get_next_as_optional()
        if not batch.has_value():
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
        video, labels = batch.get_value()
        stats = train_step(video, labels)
        check_finite(int(step) + 1, stats)
        step.assign_add(1)
        batch_in_epoch.assign_add(1)
        for key in ("top1", "top5", "count", *losses):
            window[key] += float(stats[key])
        window["steps"] += 1
        shown = [(key, window[key] / window["steps"]) for key in losses]
        current = int(step)
        learning_rate = float(optimizer.learning_rate)
        if current % train.log_every == 0 or current == train.steps:
            count = max(window["count"], 1.0)
            summary = {
                **dict(shown),
                "top1": window["top1"] / count,
                "top5": window["top5"] / count,
            }
            elapsed = time.time() - start_time
            summary["learning_rate"] = learning_rate
            summary["steps_per_second"] = (current - start_step) / max(elapsed, 1e-9)
            with writer().as_default():
                for key, value in summary.items():
                    write_scalar(f"train/{key}", value, current)
            writer().flush()
            window = {"top1": 0.0, "top5": 0.0, "count": 0.0, "steps": 0,
                      **dict.fromkeys(losses, 0.0)}
        progbar.update(current, values=[*shown, ("lr", learning_rate)])
        if current == train.steps and train.bn_recalibration_batches:
            bn_calibration.recalibrate_on_training_data(model, cfg)  # Saved just below.
        if current % train.checkpoint_every == 0 or current == train.steps:
            path = save(current)
            logging.info("Saved checkpoint %s.", path)
        if (mode == "train_and_eval" and train.eval_every
                and current % train.eval_every == 0 and current < train.steps):
            results = _evaluate(cfg, model, current, out_dir, chief)
    logging.info("Training stopped at step %d; the train step was traced %d time(s).",
                 int(step), train_step.experimental_get_tracing_count())
    if mode == "train_and_eval":
        results = _evaluate(cfg, model, int(step), out_dir, chief)
    return results


def _diverged(step, what, manager):
    latest = manager.latest_checkpoint
    kept = (f"the latest good checkpoint, {latest}, is kept" if latest
            else "no checkpoint was saved")
    raise DivergedError(
        f"Training diverged at step {step}: {what}. Nothing of this step was saved; {kept}. "
        "Lower train.base_learning_rate, or set train.clipnorm > 0.")


def _evaluate(cfg, model, step, out_dir, chief):
    """Runs every mode in ``cfg.eval.modes``, prints them side by side, saves JSON.

    Results that cannot be saved (a read-only run folder) are printed and the
    reason logged; evaluating a finished run needs no write access.
    """
    if not chief:
        return {}
    results = evaluation.evaluate(model, cfg)
    print(evaluation.format_results(results))
    try:
        writer = tf.summary.create_file_writer(os.path.join(out_dir, "eval"))
        with writer.as_default():
            for mode, metrics in results.items():
                write_scalar(f"eval/{mode}/top1", metrics["top1"], step)
                write_scalar(f"eval/{mode}/top5", metrics["top5"], step)
        writer.flush()
        config_lib.atomic_write_text(os.path.join(out_dir, f"eval_step{step}.json"),
                                     json.dumps({"step": step, **results}, indent=2))
    except (OSError, tf.errors.OpError) as error:
        logging.warning("Could not save the eval results in %s: %s", out_dir,
                        str(error).strip().splitlines()[0])
    return results


def _save_resolved_config(cfg, out_dir):
    """Writes config.yaml atomically when it is new or differs (already checked by the caller)."""
    path = os.path.join(out_dir, CONFIG_FILE)
    text = config_lib.config_to_yaml(cfg)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    config_lib.atomic_write_text(path, text)


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
    check_data_source(cfg.data)
    if cfg.ensemble.members > 1:
        ensemble_train.train_ensemble(cfg, model_dir, FLAGS.mode, FLAGS.member,
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
