"""The distributed train step and the divergence guard around it."""
import math

import keras
import tensorflow as tf

from movinet_tf.training import subclips


class DivergedError(ValueError):
    """Training produced a non-finite loss, gradient or weight; nothing of that step was saved."""


def make_train_step(cfg, model, optimizer, strategy):
    """The `tf.function` ``train_step(video, labels) -> stats`` of one global batch.

    Each replica computes softmax cross-entropy (``train.label_smoothing``) over
    its part of the batch divided by the global batch, plus its share of the L2
    terms in ``model.losses``; gradients are summed over replicas, then clipped
    per tensor to ``train.clipnorm`` (when > 0), then applied. With
    ``train.subclips > 1`` the gradients come from `subclips.subclip_loss_and_grads`.

    Returns:
        A function of ``video [B, T, H, W, 3]`` and ``labels [B]`` returning a dict of
        scalars: ``loss`` (``cross_entropy + regularization``), ``cross_entropy``,
        ``regularization``, ``top1`` and ``top5`` (hit counts), ``count`` (examples)
        and ``grad_norm`` (the global norm before clipping).
    """
    train = cfg.train
    num_classes = cfg.data.num_classes
    num_replicas = strategy.num_replicas_in_sync
    global_batch = cfg.data.batch_size
    loss_object = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=train.label_smoothing, reduction=None)
    loss_scale = getattr(optimizer, "dynamic_scale", None)

    def per_example_loss(labels, logits):
        onehot = tf.one_hot(tf.cast(labels, tf.int32), num_classes)
        return loss_object(onehot, tf.cast(logits, tf.float32))

    def replica_loss(labels, logits):
        """A replica's cross-entropy over its examples, divided by the global batch."""
        return tf.reduce_sum(per_example_loss(labels, logits)) / global_batch

    def reduce_gradients(grads):
        """Sum over replicas, clip each tensor, and undo the sum the optimizer will redo.

        Returns the gradients and their global norm before clipping (without the loss scale).
        """
        context = tf.distribute.get_replica_context()
        if num_replicas > 1:
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        scale = tf.cast(loss_scale, tf.float32) if loss_scale is not None else 1.0
        grads, grad_norm = clip_each(grads, train.clipnorm, scale)
        if num_replicas > 1:
            grads = [g / num_replicas for g in grads]
        return grads, grad_norm

    def step_fn(video, labels):
        variables = model.trainable_variables
        if train.subclips > 1:
            # Sub-clips carrying stream states, gradients accumulated; the L2 term does
            # not depend on the clip, so its gradient is added once.
            loss, logits, grads = subclips.subclip_loss_and_grads(
                model, video, labels, replica_loss, train.subclips, training=True,
                variables=variables, scale_loss=optimizer.scale_loss)
            regularization, grads = add_regularization(model, optimizer, variables, grads,
                                                       num_replicas)
            cross_entropy = loss
            loss = loss + regularization
        else:
            with tf.GradientTape() as tape:
                logits = tf.cast(model(video, training=True), tf.float32)
                cross_entropy = replica_loss(labels, logits)
                regularization = tf.add_n(model.losses) / num_replicas if model.losses else 0.0
                loss = cross_entropy + regularization
                scaled_loss = optimizer.scale_loss(loss)
            grads = tape.gradient(scaled_loss, variables)
        return step_stats(grads, variables, loss, cross_entropy, regularization, logits, labels)

    def step_stats(grads, variables, loss, cross_entropy, regularization, logits, labels):
        """Reduces, clips and applies `grads`; returns the step's scalars."""
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        # The norm is taken before clipping; with a loss scale, inf is expected now and
        # then (the step is skipped).
        grads, grad_norm = reduce_gradients([g for g, _ in pairs])
        optimizer.apply(grads, [v for _, v in pairs])
        labels = tf.cast(labels, tf.int32)
        top1 = tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, 1), tf.float32))
        top5 = tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, min(5, num_classes)), tf.float32))
        count = tf.cast(tf.shape(labels)[0], tf.float32)
        return {"loss": loss, "cross_entropy": cross_entropy,
                "regularization": tf.cast(regularization, tf.float32),
                "top1": top1, "top5": top5, "count": count, "grad_norm": grad_norm}

    if train.subclips > 1 and num_replicas == 1:
        return _subclip_train_step(cfg, model, optimizer, replica_loss, step_stats)

    @tf.function
    def train_step(video, labels):
        stats = strategy.run(step_fn, args=(video, labels))
        # Per-replica losses are already divided by the global batch: their sum is the loss.
        # Every replica holds the same all-reduced gradient norm: take the mean.
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN if k == "grad_norm" else
                                   tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in stats.items()}

    return train_step


def add_regularization(model, optimizer, variables, grads, num_replicas=1):
    """The L2 term of `model.losses` (one replica's share) and `grads` plus its gradient.

    The term does not depend on the clip, so sub-clip training adds it once per step.
    """
    if not model.losses:
        return 0.0, grads
    with tf.GradientTape() as tape:
        regularization = tf.add_n(model.losses) / num_replicas
        scaled_regularization = optimizer.scale_loss(regularization)
    extra = tape.gradient(scaled_regularization, variables)
    return regularization, [g if e is None else (e if g is None else g + e)
                            for g, e in zip(grads, extra)]


def _subclip_train_step(cfg, model, optimizer, replica_loss, step_stats):
    """The train step of ``train.subclips > 1`` on one replica.

    The sub-clips run from Python (`subclips.SubclipGradients`: a traced forward and
    a traced backward piece per sub-clip, so the process memory falls with n); the L2
    term, the clipping and the update are one `tf.function` after them. (With several
    replicas the sub-clips stay the `tf.while_loop` of
    `subclips.subclip_loss_and_grads` inside the replicated step.)
    """
    variables = model.trainable_variables
    gradients = subclips.SubclipGradients(
        model, replica_loss, cfg.train.subclips, training=True, variables=variables,
        scale_loss=optimizer.scale_loss)

    @tf.function
    def finish(grads, cross_entropy, logits, labels):
        regularization, grads = add_regularization(model, optimizer, variables, grads)
        return step_stats(grads, variables, cross_entropy + regularization, cross_entropy,
                          regularization, logits, labels)

    def train_step(video, labels):
        cross_entropy, logits, grads = gradients(video, labels)
        return finish(grads, cross_entropy, logits, labels)

    # As a tf.function reports it, for the trainer's log line.
    train_step.experimental_get_tracing_count = (
        lambda: gradients.tracing_count() + finish.experimental_get_tracing_count())
    return train_step


def clip_each(grads, clipnorm, scale=1.0):
    """Clips each gradient to norm `clipnorm` (none when <= 0) and gives the global norm before.

    Same result as ``tf.clip_by_norm(g / scale, clipnorm) * scale`` per tensor followed by
    `tf.linalg.global_norm`, but from one fused sum of squares per tensor (``L2Loss``) and
    one multiply: a step of A0-Stream has 265 gradients, and the per-tensor ops cost
    more than their arithmetic.

    Args:
        grads: a list of dense gradient tensors, multiplied by the loss `scale`.
        clipnorm: the largest norm of each unscaled gradient.
        scale: the loss scale (1 without one).

    Returns:
        ``(clipped gradients, global norm of the unscaled gradients before clipping)``.
    """
    squares = tf.stack([2.0 * tf.nn.l2_loss(tf.cast(g, tf.float32)) for g in grads])
    grad_norm = tf.sqrt(tf.reduce_sum(squares)) / scale
    if clipnorm <= 0:
        return grads, grad_norm
    norms = tf.sqrt(squares) / scale
    factors = tf.unstack(clipnorm / tf.maximum(norms, clipnorm))
    return [g * tf.cast(f, g.dtype) for g, f in zip(grads, factors)], grad_norm


def check_finite(step, stats, optimizer, latest_checkpoint):
    """Raises `DivergedError` when the step's loss (or, without a loss scale, its gradient) is not finite."""
    loss, grad_norm = float(stats["loss"]), float(stats["grad_norm"])
    bad = []
    if not math.isfinite(loss):
        bad.append(f"the loss is {loss}")
    if getattr(optimizer, "dynamic_scale", None) is None and not math.isfinite(grad_norm):
        bad.append(f"the gradient norm is {grad_norm}")
    if bad:
        raise diverged(step, " and ".join(bad), latest_checkpoint)


def check_weights(step, model, latest_checkpoint):
    """Raises `DivergedError` when a float weight of `model` is not finite (checked before saving)."""
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in model.weights
                            if tf.as_dtype(v.dtype).is_floating])
    if not bool(finite):
        raise diverged(step, "a weight is not finite after the update", latest_checkpoint)


def diverged(step, what, latest_checkpoint):
    """The `DivergedError` of a step, saying which checkpoint is kept."""
    kept = (f"the latest good checkpoint, {latest_checkpoint}, is kept" if latest_checkpoint
            else "no checkpoint was saved")
    return DivergedError(
        f"Training diverged at step {step}: {what}. Nothing of this step was saved; {kept}. "
        "Lower train.base_learning_rate, or set train.clipnorm > 0.")
