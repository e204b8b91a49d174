"""The model a training run starts from: the official scale for depthwise kernels on request."""
import math

import keras
import numpy as np

from movinet_tf import config as config_lib
from movinet_tf.training import state as state_lib


def _build(depthwise_init):
    cfg = config_lib.load_config("tiny", [f"train.depthwise_init={depthwise_init}"])
    keras.utils.set_random_seed(7)
    return state_lib.build_model(cfg)


def _depthwise_kernels(model):
    return {kernel.path: kernel.numpy() for kernel in state_lib.depthwise_kernels(model)}


def test_official_depthwise_init_has_the_official_fan_in_and_leaves_the_rest():
    ours, official = _build("keras"), _build("official")
    ours_dw, official_dw = _depthwise_kernels(ours), _depthwise_kernels(official)
    assert ours_dw and ours_dw.keys() == official_dw.keys()
    ratios, keras_ratios = [], []
    for path, kernel in official_dw.items():
        kt, kh, kw, one, channels = kernel.shape
        assert one == 1
        ratios.append(np.std(kernel) / math.sqrt(2.0 / (kt * kh * kw * channels)))
        keras_ratios.append(np.std(ours_dw[path]) / math.sqrt(2.0 / (kt * kh * kw)))
    # Each std is an estimate from a few hundred draws: the median is within 10%.
    assert 0.9 < np.median(ratios) < 1.1, ratios
    assert 0.9 < np.median(keras_ratios) < 1.1, keras_ratios  # Keras counts the taps only.
    for weight, other in zip(ours.weights, official.weights):
        if weight.path not in official_dw:
            np.testing.assert_array_equal(weight.numpy(), other.numpy(), err_msg=weight.path)
