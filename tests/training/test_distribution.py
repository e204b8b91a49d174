"""`distribution.configure_devices`: the threads per op, in a fresh process and in one
where TensorFlow already runs."""
import subprocess
import sys

import pytest
import tensorflow as tf
from absl import logging

from movinet_tf import config as config_lib
from movinet_tf.training import distribution

_FRESH = """
from movinet_tf import config
from movinet_tf.training import distribution
import tensorflow as tf
cfg = config.load_config("tiny", ["runtime.intra_op_threads={threads}"])
distribution.configure_devices(cfg.runtime)
tf.constant(1.0) + 1.0  # TensorFlow starts with the setting
print(tf.config.threading.get_intra_op_parallelism_threads())
"""


def test_intra_op_threads_is_applied_before_tensorflow_starts():
    for threads in (1, 0):
        out = subprocess.run([sys.executable, "-c", _FRESH.format(threads=threads)],
                             capture_output=True, text=True, timeout=120, check=True)
        assert out.stdout.split()[-1] == str(threads)


def test_intra_op_threads_after_tensorflow_started_warns_and_goes_on(monkeypatch):
    tf.constant(1.0) + 1.0
    before = tf.config.threading.get_intra_op_parallelism_threads()
    wanted = before + 3
    warnings = []
    monkeypatch.setattr(logging, "warning", lambda msg, *args: warnings.append(msg % args))
    cfg = config_lib.load_config("tiny", [f"runtime.intra_op_threads={wanted}"])
    distribution.configure_devices(cfg.runtime)
    assert tf.config.threading.get_intra_op_parallelism_threads() == before
    assert warnings == [f"runtime.intra_op_threads={wanted} not applied: TensorFlow is "
                        "already running in this process."]


def test_negative_intra_op_threads_is_a_config_error():
    with pytest.raises(ValueError, match="runtime.intra_op_threads"):
        config_lib.load_config("tiny", ["runtime.intra_op_threads=-1"])
