"""The learning-rate schedule and the optimizer of ``cfg.train``."""
import keras

from movinet_tf import config as config_lib


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


def make_optimizer(cfg, learning_rate=None):
    """The optimizer of ``cfg.train`` (``train.optimizer`` and its hyper-parameters).

    Args:
        cfg: an `ExperimentConfig` (only ``cfg.train`` and ``cfg.runtime`` are read).
        learning_rate: a float or schedule; default `make_learning_rate(cfg)`.

    Gradient clipping is not given to Keras (which would clip each replica's
    gradient before the all-reduce); the train step clips the summed one.
    """
    train = cfg.train
    schedule = make_learning_rate(cfg) if learning_rate is None else learning_rate
    optimizer = build_optimizer(train.optimizer, schedule, momentum=train.momentum,
                                epsilon=train.epsilon, rmsprop_rho=train.rmsprop_rho,
                                weight_decay=train.weight_decay)
    if cfg.runtime.mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name="loss_scale")
    return optimizer


def build_optimizer(kind, learning_rate, momentum=0.0, epsilon=1e-7, rmsprop_rho=0.9,
                    weight_decay=0.004):
    """One Keras optimizer by name, for the trainer and the NAS weight updates alike.

    Args:
        kind: 'rmsprop', 'sgd', 'adam' or 'adamw'.
        learning_rate: a float or a `keras.optimizers.schedules` schedule.
        momentum: for 'rmsprop' and 'sgd'.
        epsilon: for 'rmsprop', 'adam' and 'adamw'.
        rmsprop_rho: for 'rmsprop'.
        weight_decay: for 'adamw' (decoupled weight decay).

    The defaults are Keras's own.
    """
    # A fixed name: Keras would number a second optimizer in the same process
    # ("rm_sprop_1"), and checkpoints key the slots by their variable paths.
    name = "optimizer"
    if kind == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate, rho=rmsprop_rho,
                                        momentum=momentum, epsilon=epsilon, name=name)
    if kind == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, name=name)
    if kind == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=epsilon, name=name)
    if kind == "adamw":
        return keras.optimizers.AdamW(learning_rate=learning_rate, epsilon=epsilon,
                                      weight_decay=weight_decay, name=name)
    raise ValueError(f"Unknown optimizer {kind!r}; expected rmsprop, sgd, adam or adamw.")


def optimizer_variables(optimizer):
    """The optimizer's variables keyed by their paths: the checkpoint key scheme of its slots."""
    named = {}
    for variable in optimizer.variables:
        if variable.path in named:
            raise ValueError(f"Two optimizer variables are both named {variable.path!r}.")
        named[variable.path] = variable
    return named
