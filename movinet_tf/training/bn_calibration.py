"""BatchNorm recalibration ("precise BN"): moving statistics re-estimated after training.

BatchNorm's moving averages (momentum 0.99) mix statistics of the last few
hundred steps, taken while the weights were still changing. After a short run
they lag the final weights. `recalibrate` replaces them with the statistics of
the final weights over a number of training batches: each trainable BatchNorm
layer's moving mean and variance become the mean and the variance of its
inputs pooled over every position of every batch, as seen in a training-mode
forward pass (each layer's input normalised with batch statistics upstream,
as during training).

Frozen BatchNorm layers (``trainable = False``, e.g. a frozen backbone) keep
their statistics.
"""
import keras
import numpy as np
import tensorflow as tf

from movinet_tf import data as data_lib


def batch_norm_layers(model):
    """The trainable `keras.layers.BatchNormalization` layers of `model`, in build order."""
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


def recalibrate(model, videos, num_batches):
    """Sets every trainable BatchNorm layer's moving statistics to pooled batch statistics.

    Args:
        model: a built Keras model (e.g. a MovinetClassifier); its weights other
            than BatchNorm moving statistics are not changed.
        videos: an iterable of model inputs (e.g. `[B, T, H, W, 3]` training
            clips), or of `(video, label)` pairs; only the first `num_batches`
            are read. Batches should have equal sizes (the pooled variance weighs
            every batch the same).
        num_batches: how many batches to use, >= 1.

    Returns:
        The number of batches used (fewer than `num_batches` when `videos` ran out).

    Raises:
        ValueError: `num_batches` < 1, `videos` is empty, or `model` has no
            trainable BatchNorm layer.
    """
    if num_batches < 1:
        raise ValueError(f"num_batches must be >= 1, got {num_batches}.")
    layers = batch_norm_layers(model)
    if not layers:
        raise ValueError(f"Model {model.name!r} has no trainable BatchNormalization layer to recalibrate.")
    momenta = [layer.momentum for layer in layers]
    saved = [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in layers]
    # With momentum 0 a training-mode call leaves each layer's moving statistics equal
    # to the batch statistics of its input (Keras and the fused path both store the
    # biased variance). The traced function bakes momentum 0 in.
    for layer in layers:
        layer.momentum = 0.0
    try:
        forward = tf.function(lambda video: model(video, training=True))
        sums = [np.zeros((3,) + tuple(layer.moving_mean.shape), np.float64) for layer in layers]
        used = 0
        for batch in videos:
            if used >= num_batches:
                break
            video = batch[0] if isinstance(batch, (tuple, list)) else batch
            forward(video)
            for total, layer in zip(sums, layers):
                mean = layer.moving_mean.numpy().astype(np.float64)
                total[0] += mean
                total[1] += layer.moving_variance.numpy().astype(np.float64)
                total[2] += mean ** 2
            used += 1
        if not used:
            raise ValueError("recalibrate got no batches: the iterable of videos is empty.")
        for total, layer in zip(sums, layers):
            mean = total[0] / used
            # Pooled variance: the mean within-batch variance plus the spread of the batch means.
            variance = total[1] / used + np.maximum(total[2] / used - mean ** 2, 0.0)
            layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
            layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))
    except BaseException:
        for layer, (mean, variance) in zip(layers, saved):
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
        raise
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return used


def recalibrate_on_training_data(model, cfg):
    """`recalibrate` on ``cfg.train.bn_recalibration_batches`` augmented training batches.

    The clips come from the training pipeline of ``cfg.data`` (random crops and
    flips, batches of ``data.batch_size``), as during training.

    Returns:
        The number of batches used.
    """
    dataset = data_lib.build_dataset(cfg.data, cfg.data.train_split, training=True)
    return recalibrate(model, dataset, cfg.train.bn_recalibration_batches)
