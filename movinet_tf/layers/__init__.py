"""Keras layers of MoViNets. Each stateful layer takes and returns its states."""
from movinet_tf.layers.activations import get_activation, hard_sigmoid, hard_swish, swish
from movinet_tf.layers.attention import PositionalEncoding, SqueezeExcitation, make_divisible
from movinet_tf.layers.blocks import (ClassifierHead, MovinetBlock, Scale, SkipBlock,
                                      StochasticDepth)
from movinet_tf.layers.conv import CausalConv3D
from movinet_tf.layers.pooling import CumulativeGlobalAveragePooling3D

__all__ = ["CausalConv3D", "ClassifierHead", "CumulativeGlobalAveragePooling3D", "MovinetBlock",
           "PositionalEncoding", "Scale", "SkipBlock", "SqueezeExcitation", "StochasticDepth",
           "get_activation", "hard_sigmoid", "hard_swish", "make_divisible", "swish"]
