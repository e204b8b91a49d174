"""Devices and the `tf.distribute.Strategy` of ``cfg.runtime``, and which process writes what."""
import os

import tensorflow as tf
from absl import logging


def configure_devices(runtime):
    """Splits the CPU into logical devices and sets the threads per op, when asked.

    Both must happen before TensorFlow runs its first op. Where it already has (a
    process that ran TF before training), the thread count cannot change: a warning
    says so and training goes on with TF's current setting.
    """
    threads = runtime.intra_op_threads
    if threads and tf.config.threading.get_intra_op_parallelism_threads() != threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:
            logging.warning("runtime.intra_op_threads=%d not applied: TensorFlow is already "
                            "running in this process.", threads)
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


def check_global_batch(global_batch, strategy, strategy_name):
    """The global batch must split evenly over the replicas; returns the per-replica batch."""
    num_replicas = strategy.num_replicas_in_sync
    if global_batch % num_replicas:
        raise ValueError(
            f"data.batch_size={global_batch} is the global batch and must divide evenly over "
            f"the {num_replicas} replicas of runtime.strategy={strategy_name!r}.")
    return global_batch // num_replicas


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
