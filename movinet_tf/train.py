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

The loop in `train_and_evaluate` reads top to bottom: strategy -> model ->
optimizer -> checkpoint restore (resume or fine-tune) -> steps -> evaluation.

Resuming: restarting the same command continues from the newest checkpoint in
``model_dir`` with the same model weights, optimizer slots, step, and data
position (epoch and batches consumed in it). Checkpoints are written by
`tf.train.CheckpointManager`: the data files are complete before the small
``checkpoint`` index file is atomically replaced to point at them, so a kill at
any moment leaves the previous checkpoints usable.
"""
import dataclasses
import json
import os
import shutil
import sys
import time

from absl import app
from absl import flags
from absl import logging

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

CONFIG_FILE = "config.yaml"


# ------------------------------------------------------------------ setup


def configure_devices(runtime):
    """Splits the CPU into logical devices when asked; must run before TF starts."""
    import tensorflow as tf
    if runtime.cpu_logical_devices > 1:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * runtime.cpu_logical_devices)
    if runtime.run_eagerly:
        tf.config.run_functions_eagerly(True)


def make_strategy(runtime):
    """The `tf.distribute.Strategy` named by ``runtime.strategy``."""
    import tensorflow as tf
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
    import movinet_tf
    overrides = {
        key: value for key, value in dataclasses.asdict(cfg.model).items()
        if key not in ("model_id", "stream") and value is not None
    }
    overrides["kernel_l2"] = cfg.train.l2_weight_decay / 2
    return movinet_tf.build_model(
        cfg.model.model_id, stream=cfg.model.stream, num_classes=cfg.data.num_classes,
        **overrides)


def make_learning_rate(cfg):
    """The learning rate: linear warmup from 0 to the scaled peak, then cosine decay to 0.

    The peak is ``base_learning_rate * data.batch_size / base_batch_size``; with
    ``train.schedule: constant`` it is used throughout.
    """
    import keras
    from movinet_tf import config as config_lib
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
    import keras
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
    import tensorflow as tf
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
    import tensorflow as tf
    import movinet_tf
    if path.endswith(".weights.h5"):
        if modules != "all":
            raise ValueError(
                f"train.init_checkpoint {path!r} is a .weights.h5 file, which restores the whole "
                "model only; use train.init_checkpoint_modules=all or a tf.train checkpoint.")
        model.load_weights(path)
        return
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        logging.info("Loading the variables of the published SavedModel %s (%s).", path, modules)
        movinet_tf.load_official_checkpoint(model, path, skip_classifier=modules == "backbone")
        return
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise ValueError(f"train.init_checkpoint {path!r} is a directory without a checkpoint.")
        path = latest
    if not tf.io.gfile.exists(path + ".index"):
        raise ValueError(
            f"train.init_checkpoint {path!r} is not a checkpoint (no {path}.index); give a "
            "checkpoint prefix such as runs/x/ckpt-100, a directory, or a .weights.h5 file.")
    if _is_official_checkpoint(path):
        logging.info("Loading published Model Garden checkpoint %s (%s).", path, modules)
        movinet_tf.load_official_checkpoint(model, path, skip_classifier=modules == "backbone")
        return
    logging.info("Loading checkpoint %s (%s).", path, modules)
    weights = weights_by_name(model)
    if modules == "backbone":
        weights = {k: v for k, v in weights.items() if k.startswith("backbone/")}
    saved = {name.split("/.ATTRIBUTES")[0] for name, _ in tf.train.list_variables(path)}
    missing = sorted(k for k in weights if "model/" + k.replace("/", ".S") not in saved)
    if missing:
        raise ValueError(
            f"train.init_checkpoint {path!r} lacks {len(missing)} of the {len(weights)} weights "
            f"to restore ({modules}), e.g. {missing[:3]}; is it a checkpoint of this architecture?")
    tf.train.Checkpoint(model=weights).read(path).assert_existing_objects_matched().expect_partial()


def check_data_source(data_cfg):
    """Fails fast, before any model is built, when a config points at absent data.

    Raises:
        ValueError: saying which key to set (``data.path``, ``data.source``).
    """
    import glob
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


def write_scalar(tag, value, step):
    """Writes one TensorBoard scalar to the default summary writer.

    TensorBoard itself is not a dependency (tensorflow-cpu does not bring it),
    and `tf.summary.scalar` needs it, so this writes the same event with TF's
    own `tf.summary.write` and the scalars plugin's metadata.
    """
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    metadata.data_class = summary_pb2.DATA_CLASS_SCALAR
    tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=metadata)


# ------------------------------------------------------------------ loop


def train_and_evaluate(cfg, model_dir, mode="train_and_eval"):
    """Runs training and/or evaluation for one experiment.

    Args:
        cfg: the resolved `ExperimentConfig`.
        model_dir: output directory; an existing checkpoint there is resumed.
        mode: 'train', 'eval' or 'train_and_eval'.

    Returns:
        The last evaluation results (dict mode -> metrics), or {} when none ran.
    """
    configure_devices(cfg.runtime)
    import keras
    import tensorflow as tf
    from movinet_tf import config as config_lib
    from movinet_tf import data as data_lib
    from movinet_tf import evaluation

    check_data_source(cfg.data)
    strategy = make_strategy(cfg.runtime)
    chief = is_chief(strategy)
    own_dir = worker_dir(model_dir, strategy)
    os.makedirs(own_dir, exist_ok=True)
    keras.utils.set_random_seed(cfg.train.seed)
    keras.mixed_precision.set_dtype_policy(cfg.runtime.mixed_precision)
    num_replicas = strategy.num_replicas_in_sync
    global_batch = cfg.data.batch_size
    if global_batch % num_replicas:
        raise ValueError(
            f"data.batch_size={global_batch} is the global batch and must divide evenly over "
            f"the {num_replicas} replicas of runtime.strategy={cfg.runtime.strategy!r}.")
    if chief:
        _save_resolved_config(cfg, own_dir)
    logging.info("Strategy %s with %d replica(s); global batch %d; peak lr %.6g.",
                 cfg.runtime.strategy, num_replicas, global_batch, config_lib.learning_rate(cfg))

    state = make_training_state(cfg, strategy)
    manager = tf.train.CheckpointManager(
        state.checkpoint, own_dir, max_to_keep=cfg.train.keep_checkpoints,
        step_counter=state.step)

    # Resume beats fine-tuning: after a kill, the init checkpoint was already used.
    if manager.latest_checkpoint:
        restore_checkpoint(state, manager.latest_checkpoint)
    elif cfg.train.init_checkpoint:
        load_init_checkpoint(state.model, cfg.train.init_checkpoint,
                             cfg.train.init_checkpoint_modules)
    elif mode == "eval":
        raise ValueError(
            f"--mode=eval found no checkpoint in {model_dir!r} and train.init_checkpoint is "
            "empty: nothing to evaluate.")

    results = {}
    if mode in ("train", "train_and_eval"):
        results = _train(cfg, state, strategy, manager, own_dir, chief, mode, data_lib, evaluation)
    if mode == "eval":
        results = _evaluate(cfg, state.model, int(state.step), own_dir, chief, data_lib, evaluation)
    if not chief and not cfg.runtime.keep_worker_checkpoints:
        # Non-chief workers must save too (saving is collective), but only the chief's copy is kept.
        shutil.rmtree(own_dir, ignore_errors=True)
    return results


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
    import tensorflow as tf
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


def _optimizer_variables(optimizer):
    named = {}
    for variable in optimizer.variables:
        if variable.path in named:
            raise ValueError(f"Two optimizer variables are both named {variable.path!r}.")
        named[variable.path] = variable
    return named


def restore_checkpoint(state, path):
    """Restores a training checkpoint into `state`; every object must match."""
    state.checkpoint.restore(path).assert_existing_objects_matched()
    logging.info("Resumed from %s at step %d (epoch %d, batch %d of that epoch).",
                 path, int(state.step), int(state.epoch), int(state.batch_in_epoch))


def _train(cfg, state, strategy, manager, out_dir, chief, mode, data_lib, evaluation):
    """The training steps; see `train_and_evaluate`."""
    import keras
    import tensorflow as tf

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
            from movinet_tf import subclips
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
        optimizer.apply(grads, [v for _, v in pairs])
        labels = tf.cast(labels, tf.int32)
        top1 = tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, 1), tf.float32))
        top5 = tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, min(5, num_classes)), tf.float32))
        count = tf.cast(tf.shape(labels)[0], tf.float32)
        # The printed and logged loss is cross-entropy (label smoothing included) plus
        # the L2 term; both parts are reported too.
        return {"loss": loss, "cross_entropy": cross_entropy,
                "regularization": tf.cast(regularization, tf.float32),
                "top1": top1, "top5": top5, "count": count}

    @tf.function
    def train_step(video, labels):
        stats = strategy.run(step_fn, args=(video, labels))
        # Per-replica losses are already divided by the global batch: their sum is the loss.
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in stats.items()}

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

    writer = tf.summary.create_file_writer(os.path.join(out_dir, "train")) if chief \
        else tf.summary.create_noop_writer()
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
                        "per replica; lower data.batch_size or add data.")
            logging.info("Epoch %d done after %d steps.", int(epoch), int(batch_in_epoch))
            epoch.assign_add(1)
            batch_in_epoch.assign(0)
            iterator = None
            continue
        empty_epochs = 0
        video, labels = batch.get_value()
        stats = train_step(video, labels)
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
            with writer.as_default():
                for key, value in summary.items():
                    write_scalar(f"train/{key}", value, current)
            writer.flush()
            window = {"top1": 0.0, "top5": 0.0, "count": 0.0, "steps": 0,
                      **dict.fromkeys(losses, 0.0)}
        progbar.update(current, values=[*shown, ("lr", learning_rate)])
        if current % train.checkpoint_every == 0 or current == train.steps:
            path = manager.save(checkpoint_number=current)
            logging.info("Saved checkpoint %s.", path)
        if (mode == "train_and_eval" and train.eval_every
                and current % train.eval_every == 0 and current < train.steps):
            results = _evaluate(cfg, model, current, out_dir, chief, data_lib, evaluation)
    logging.info("Training stopped at step %d; the train step was traced %d time(s).",
                 int(step), train_step.experimental_get_tracing_count())
    if mode == "train_and_eval":
        results = _evaluate(cfg, model, int(step), out_dir, chief, data_lib, evaluation)
    return results


def _evaluate(cfg, model, step, out_dir, chief, data_lib, evaluation):
    """Runs every mode in ``cfg.eval.modes``, prints them side by side, saves JSON."""
    import tensorflow as tf
    if not chief:
        return {}
    results = evaluation.evaluate(model, cfg)
    print(evaluation.format_results(results))
    writer = tf.summary.create_file_writer(os.path.join(out_dir, "eval"))
    with writer.as_default():
        for mode, metrics in results.items():
            write_scalar(f"eval/{mode}/top1", metrics["top1"], step)
            write_scalar(f"eval/{mode}/top5", metrics["top5"], step)
    writer.flush()
    from movinet_tf import config as config_lib
    config_lib.atomic_write_text(
        os.path.join(out_dir, f"eval_step{step}.json"), json.dumps({"step": step, **results}, indent=2))
    return results


def _save_resolved_config(cfg, out_dir):
    """Writes config.yaml atomically, logging what changed since the previous run."""
    from movinet_tf import config as config_lib
    path = os.path.join(out_dir, CONFIG_FILE)
    text = config_lib.config_to_yaml(cfg)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            previous = f.read()
        if previous != text:
            logging.warning("The config differs from the one saved in %s; overwriting it.", path)
    config_lib.atomic_write_text(path, text)


# ------------------------------------------------------------------- CLI


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from movinet_tf import config as config_lib
    if not FLAGS.config:
        raise app.UsageError(
            "--config is required, e.g. --config a0_stream_builtin. Shipped configs: "
            + ", ".join(config_lib.available_configs()))
    try:
        cfg = config_lib.load_config(FLAGS.config, FLAGS.set)
        check_data_source(cfg.data)
    except (FileNotFoundError, ValueError, TypeError) as error:
        # A config mistake is the user's to fix: a one-line message, not a traceback.
        sys.exit(f"movinet_tf.train: error: {error}")
    model_dir = FLAGS.model_dir or os.path.join(
        "runs", os.path.splitext(os.path.basename(FLAGS.config))[0])
    if cfg.ensemble.members > 1:
        from movinet_tf import ensemble_train
        members = cfg.ensemble.members
        if FLAGS.member is not None and not 0 <= FLAGS.member < members:
            raise app.UsageError(f"--member {FLAGS.member} does not exist: the ensemble has "
                                 f"{members} members (0..{members - 1}).")
        ensemble_train.train_ensemble(cfg, model_dir, FLAGS.mode, FLAGS.member)
        return
    if FLAGS.member is not None:
        raise app.UsageError("--member is for ensemble configs (ensemble.members >= 2).")
    train_and_evaluate(cfg, model_dir, FLAGS.mode)


def run():
    """Console-script entry point (``movinet-train``)."""
    define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
