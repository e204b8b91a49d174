"""The learning-rate schedule and the optimizer of ``cfg.train``.

Adam, AdamW and RMSprop with momentum update each variable with one of TF's fused
training kernels (``ResourceApplyAdam``, ``ResourceApplyRMSProp``,
``ResourceApplyCenteredRMSProp``) instead of Keras's five to ten elementwise ops per
variable. The arithmetic is Keras's, term for term, and the slots are Keras's own
variables, so checkpoints are unchanged. A0-Stream has 265 trainable variables: on
the quickstart's step the update fell from 26 to 13 ms on one core
(docs/training.md).
"""
import keras
import tensorflow as tf

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
        return FusedRMSprop(learning_rate=learning_rate, rho=rmsprop_rho,
                                        momentum=momentum, epsilon=epsilon, name=name)
    if kind == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, name=name)
    if kind == "adam":
        return FusedAdam(learning_rate=learning_rate, epsilon=epsilon, name=name)
    if kind == "adamw":
        return FusedAdamW(learning_rate=learning_rate, epsilon=epsilon,
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


def _handle(variable):
    """The resource handle of a Keras or TF variable (in a distributed update: this device's)."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


class _FusedUpdate:
    """Mixin: one fused TF kernel per variable, its scalars computed once per step.

    Subclasses define ``_step_scalars()`` (a dict of float32 scalars other than the
    learning rate) and ``_fused_update(gradient, variable, index, scalars)``, returning
    False where the fused kernel does not apply (then Keras's own update runs). The
    learning rate comes with each call: under a strategy it is a per-replica value,
    which Keras hands to each device's update.
    """

    _scalars = None

    def _distributed_tf_update_step(self, distribution, grads_and_vars, learning_rate):
        # Keras calls this once per step (in cross-replica context under a strategy),
        # then `update_step` per variable and device.
        self._scalars = self._step_scalars()
        try:
            return super()._distributed_tf_update_step(distribution, grads_and_vars,
                                                       learning_rate)
        finally:
            self._scalars = None

    def update_step(self, gradient, variable, learning_rate):
        fusable = (isinstance(gradient, tf.Tensor) and variable.dtype == "float32"
                   and gradient.dtype == tf.float32)
        scalars = dict(self._scalars if self._scalars is not None else self._step_scalars(),
                       lr=tf.cast(learning_rate, tf.float32))
        if not (fusable and self._fused_update(gradient, variable,
                                               self._get_variable_index(variable), scalars)):
            super().update_step(gradient, variable, learning_rate)


class FusedAdam(_FusedUpdate, keras.optimizers.Adam):
    """`keras.optimizers.Adam` (without amsgrad) through ``ResourceApplyAdam``."""

    def _step_scalars(self):
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1 = tf.constant(self.beta_1, tf.float32)
        beta_2 = tf.constant(self.beta_2, tf.float32)
        return {"beta1": beta_1, "beta2": beta_2,
                "beta1_power": tf.pow(beta_1, step), "beta2_power": tf.pow(beta_2, step),
                "epsilon": tf.constant(self.epsilon, tf.float32)}

    def _fused_update(self, gradient, variable, index, scalars):
        if self.amsgrad:
            return False
        tf.raw_ops.ResourceApplyAdam(var=_handle(variable), m=_handle(self._momentums[index]),
                                     v=_handle(self._velocities[index]), grad=gradient,
                                     **scalars)
        return True


class FusedAdamW(FusedAdam, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW`: Keras applies the decoupled decay, then the fused Adam step."""


class FusedRMSprop(_FusedUpdate, keras.optimizers.RMSprop):
    """`keras.optimizers.RMSprop` with momentum > 0 through TF's RMSProp kernels.

    Without momentum Keras keeps no momentum slot, which the kernels need; that
    case runs Keras's own update.
    """

    def _step_scalars(self):
        return {"rho": tf.constant(self.rho, tf.float32),
                "momentum": tf.constant(self.momentum, tf.float32),
                "epsilon": tf.constant(self.epsilon, tf.float32)}

    def _fused_update(self, gradient, variable, index, scalars):
        if self.momentum <= 0:
            return False
        velocity, momentum = self._velocities[index], self._momentums[index]
        if self.centered:
            tf.raw_ops.ResourceApplyCenteredRMSProp(
                var=_handle(variable), mg=_handle(self._average_gradients[index]),
                ms=_handle(velocity), mom=_handle(momentum), grad=gradient, **scalars)
        else:
            tf.raw_ops.ResourceApplyRMSProp(var=_handle(variable), ms=_handle(velocity),
                                            mom=_handle(momentum), grad=gradient, **scalars)
        return True
