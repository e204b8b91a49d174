"""Every registered layer of `movinet_tf.layers` survives a config and a `.keras` round trip.

A layer class registered for Keras serialization that is missing from `CASES`
fails `test_every_registered_layer_has_a_case`, so a new layer cannot skip
the round trip.
"""
import keras
import pytest

import movinet_tf.layers
from helpers import check_layer, random_video, registered_classes
from movinet_tf.layers import (CausalConv3D, ClassifierHead, CumulativeGlobalAveragePooling3D,
                               MovinetBlock, PositionalEncoding, Scale, SkipBlock,
                               SqueezeExcitation, StochasticDepth)
from movinet_tf.layers.norm import BatchNorm

# name -> (a fresh layer, the input shape), with every option away from its default.
CASES = {
    "BatchNorm": (lambda: BatchNorm(momentum=0.9, epsilon=1e-2), (1, 3, 4, 4, 5)),
    "CausalConv3D": (lambda: CausalConv3D(
        6, (3, 3, 3), (1, 2, 2), conv_type="2plus1d", causal=True, use_bias=True,
        activation="hard_swish", batch_norm_momentum=0.9, batch_norm_epsilon=1e-2,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.3), kernel_l2=1e-4,
        state_prefix="state_c"), (1, 4, 8, 8, 4)),
    "CumulativeGlobalAveragePooling3D": (lambda: CumulativeGlobalAveragePooling3D(
        causal=True, stateful=True, state_prefix="state_p"), (1, 4, 3, 3, 5)),
    "PositionalEncoding": (lambda: PositionalEncoding("state_q", max_timescale=100),
                           (1, 4, 1, 1, 6)),
    "SqueezeExcitation": (lambda: SqueezeExcitation(
        "2plus3d", causal=True, use_positional_encoding=True, activation="hard_swish",
        gating_activation="hard_sigmoid", se_ratio=0.5, kernel_l2=1e-4, state_prefix="state_s"),
        (1, 4, 3, 3, 32)),  # Wide enough for se_ratio to change the hidden width.
    "Scale": (lambda: Scale(0.5), (2, 3)),
    "StochasticDepth": (lambda: StochasticDepth(0.3), (2, 3, 4)),
    "SkipBlock": (lambda: SkipBlock(6, (1, 2, 2), batch_norm_momentum=0.9,
                                    batch_norm_epsilon=1e-2, kernel_l2=1e-4), (1, 3, 7, 7, 4)),
    "MovinetBlock": (lambda: MovinetBlock(
        4, 8, 16, (3, 3, 3), (1, 2, 2), conv_type="3d_2plus1d", se_type="2plus3d", causal=True,
        use_positional_encoding=True, activation="hard_swish", gating_activation="hard_sigmoid",
        stochastic_depth_rate=0.1, batch_norm_momentum=0.9, batch_norm_epsilon=1e-2,
        kernel_l2=1e-4, state_prefix="state_block0_layer0"), (1, 4, 8, 8, 4)),
    "ClassifierHead": (lambda: ClassifierHead(5, 16, activation="hard_swish", dropout_rate=0.3,
                                              kernel_l2=1e-4), (2, 1, 1, 1, 12)),
}


def test_every_registered_layer_has_a_case():
    registered = registered_classes(movinet_tf.layers)
    assert len(registered) >= 10
    assert sorted(registered) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_trip(name, tmp_path):
    make, shape = CASES[name]
    layer = make()
    layer.build(shape)
    inputs = random_video(shape, seed=3) if len(shape) == 5 else \
        random_video((1,) * (5 - len(shape)) + shape, seed=3).reshape(shape)
    loaded = check_layer(layer, inputs, tmp_path, seed=4)
    assert loaded.get_config() == layer.get_config()
