"""Counting multiply-adds, the unit of the paper's "FLOPs"."""
import tensorflow as tf

from movinet_tf.layers import ops


def count_flops(model, input_shape, by_kind=False):
    """Multiply-adds of every convolution and dense layer for one call.

    The paper and the official code report "FLOPs" as multiply-adds of convs and
    dense layers; pooling, normalisation and activations are not counted. The
    count comes from tracing the model (nothing runs), so it is cheap even for
    A5 at 120x320x320.

    Args:
        model: a MoViNet from `build_model`.
        input_shape: the video [B, T, H, W, 3] of one call (for a stream model,
            [1, 1, H, W, 3] gives the cost per frame).

        by_kind: return a dict {'conv': ..., 'depthwise': ...} instead of the
            total ('conv' includes the dense layers, which are 1x1x1 convs here).

    Returns:
        The number of multiply-adds, an int (or a dict, see `by_kind`).

    Note:
        The official figure for A0-stream per frame in the TFLite configuration
        is 0.0453 G: its counter leaves out the depthwise convolutions of the
        '2plus1d' graph (Keras DepthwiseConv2D layers). With `by_kind=True` our
        'conv' entry reproduces it; our total, 0.0507 G, adds the depthwise
        convs (it is our count, not a published one).
    """
    shape = tf.TensorShape(input_shape)
    if shape.rank != 5 or not shape.is_fully_defined():
        raise ValueError(f"count_flops needs a full shape [B, T, H, W, 3], got {input_shape}.")
    with ops.count_macs() as macs:
        spec = tf.TensorSpec(shape, tf.float32)
        if getattr(model, "is_stream", False) and shape[1] == 1:
            states = model.state_specs(shape.as_list())
            tf.function(lambda s, x: model({**s, "image": x}, training=False)) \
                .get_concrete_function(states, spec)
        else:
            tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    return macs.by_kind() if by_kind else macs.total
