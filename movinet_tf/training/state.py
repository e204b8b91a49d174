"""What a training checkpoint holds, and how it is restored or initialised.

The checkpoint keys: ``model/<weight path>`` (`checkpoints.weights_by_name`),
``optimizer/<variable path>`` (`optimizer.optimizer_variables`), and the
counters ``step``, ``epoch`` and ``batch_in_epoch``.
"""
import dataclasses
import os

import keras
import tensorflow as tf
from absl import logging

from movinet_tf import checkpoints
from movinet_tf.models.official_checkpoint import load_official_checkpoint
from movinet_tf.training import optimizer as optimizer_lib


@dataclasses.dataclass
class TrainingState:
    """Everything a checkpoint holds: weights, optimizer slots and the position in the data."""
    model: object
    optimizer: object
    step: object            # tf.Variable int64: optimizer steps taken
    epoch: object           # tf.Variable int64: passes over the training split completed
    batch_in_epoch: object  # tf.Variable int64: batches of the current pass already used
    checkpoint: object      # tf.train.Checkpoint over all of the above


def build_model(cfg):
    """Builds the MoViNet described by ``cfg.model`` with the classes of ``cfg.data``.

    The L2 penalty follows the official task: ``l2(l2_weight_decay / 2)`` on every
    conv kernel except the final classifier. With ``train.depthwise_init:
    official`` the depthwise kernels are drawn again as `init_depthwise_like_official`
    says (a checkpoint restored afterwards replaces them, as every weight).
    """
    model = checkpoints.model_from_config(cfg, kernel_l2=cfg.train.l2_weight_decay / 2)
    if cfg.train.depthwise_init == "official":
        init_depthwise_like_official(model)
    return model


def init_depthwise_like_official(model):
    """Redraws every depthwise kernel of `model` with the official model's scale.

    Our depthwise kernels are ``[kt, kh, kw, 1, C]``, so Keras's He normal takes
    ``kt * kh * kw`` as their fan-in. The official model's are ``[kh, kw, C, 1]``
    (and ``[kt, 1, C, 1]``), whose fan-in also counts the C channels. BatchNorm
    follows every depthwise conv, so the scale does not change what the network
    computes, but it sets the size of a step relative to the weights wherever
    the update is not normalised (RMSprop with epsilon 1.0, SGD). Measured with
    the published RMSprop recipe (`benchmarks/train_parity.py --recipe=k600`):
    val top-1 36.0% with Keras's scale against 75.3% with this one (same seed,
    same clips; docs/training.md).
    """
    for kernel in depthwise_kernels(model):
        # Keras's fan-in of [kt, kh, kw, 1, C] is kt*kh*kw; scale 2 / C adds the channels.
        draw = keras.initializers.VarianceScaling(
            scale=2.0 / kernel.shape[-1], mode="fan_in", distribution="truncated_normal")
        kernel.assign(tf.cast(draw(tuple(kernel.shape)), kernel.dtype))


def depthwise_kernels(model):
    """The kernels of every depthwise convolution of `model` (spatial and temporal), in order."""
    kernels = []
    for layer in model._flatten_layers(include_self=False):
        if getattr(layer, "depthwise", False):
            kernels += [kernel for kernel in (getattr(layer, "kernel", None),
                                              getattr(layer, "temporal_kernel", None))
                        if kernel is not None]
    return kernels


def make_training_state(cfg, strategy):
    """Builds the model, optimizer (slots created) and counters under `strategy`."""
    with strategy.scope():
        model = build_model(cfg)
        if cfg.train.freeze_backbone:
            model.backbone.trainable = False
        optimizer = optimizer_lib.make_optimizer(cfg)
        optimizer.build(model.trainable_variables)
    # The counters live on the host, outside the strategy: the Python loop updates them.
    with tf.device("/cpu:0"):
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        batch_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="batch_in_epoch")
    checkpoint = tf.train.Checkpoint(
        model=checkpoints.weights_by_name(model),
        optimizer=optimizer_lib.optimizer_variables(optimizer),
        step=step, epoch=epoch, batch_in_epoch=batch_in_epoch)
    return TrainingState(model, optimizer, step, epoch, batch_in_epoch, checkpoint)


def restore_checkpoint(state, path):
    """Restores a training checkpoint into `state`; every object must match.

    The model weights are compared first (`checkpoints.restore`), so a
    checkpoint of another architecture is one message naming what differs.
    """
    checkpoints.restore(state.model, path, what="the run's checkpoint")
    state.checkpoint.restore(path).assert_existing_objects_matched()
    logging.info("Resumed from %s at step %d (epoch %d, batch %d of that epoch).",
                 path, int(state.step), int(state.epoch), int(state.batch_in_epoch))


def restore_or_init(cfg, state, latest):
    """Resumes from `latest`, else initialises from ``train.init_checkpoint`` if set."""
    # Resume beats fine-tuning: after a kill, the init checkpoint was already used.
    if latest:
        restore_checkpoint(state, latest)
    elif cfg.train.init_checkpoint:
        load_init_checkpoint(state.model, cfg.train.init_checkpoint,
                             cfg.train.init_checkpoint_modules)


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
        load_official_checkpoint(model, path, skip_classifier=modules == "backbone")
        return
    prefix = checkpoints.resolve_checkpoint(path, what)
    checkpoints.checkpoint_weight_shapes(prefix)  # A readable checkpoint, or one clear error.
    if _is_official_checkpoint(prefix):
        logging.info("Loading published Model Garden checkpoint %s (%s).", prefix, modules)
        load_official_checkpoint(model, prefix, skip_classifier=modules == "backbone")
        return
    logging.info("Loading checkpoint %s (%s).", prefix, modules)
    checkpoints.restore(model, prefix, strict=False,
                        only="backbone/" if modules == "backbone" else None, what=what)
