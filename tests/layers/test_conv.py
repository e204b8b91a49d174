import numpy as np
import pytest
import tensorflow as tf

from helpers import check_layer, check_stream_equals_clip, random_video, randomize_weights
from movinet_tf.layers import CausalConv3D


def _ones_conv(conv_type, **kwargs):
    layer = CausalConv3D(3, (3, 3, 3), (1, 2, 2), conv_type=conv_type, causal=True,
                         state_prefix="state_test", **kwargs)
    layer.build((1, 4, 2, 2, 3))
    for weight in layer.weights:
        if "moving" not in weight.path and "beta" not in weight.path:
            weight.assign(np.ones(weight.shape, np.float32))
    return layer


def _stream(layer, video, sizes):
    states, outputs, start = None, [], 0
    for size in sizes:
        if states is None:
            specs = layer.state_specs(video.shape)
            states = {k: tf.zeros(v.shape, v.dtype) for k, v in specs.items()}
        out, states = layer(video[:, start:start + size], states=states)
        outputs.append(out.numpy())
        start += size
    return np.concatenate(outputs, axis=1), states


@pytest.mark.parametrize("sizes", [[4], [1, 1, 1, 1], [2, 2]])
def test_causal_conv_matches_reference_values(sizes):
    # Reference values of the official layer tests: ones in, ones kernels.
    layer = _ones_conv("3d", use_batch_norm=False)
    out, _ = _stream(layer, np.ones((1, 4, 2, 2, 3), np.float32), sizes)
    np.testing.assert_allclose(out[0, :, 0, 0, 0], [12, 24, 36, 36], atol=1e-5)


@pytest.mark.parametrize("conv_type,expected", [
    ("3d", [11.994005, 23.988010, 35.982014, 35.982014]),
    ("2plus1d", [35.96404, 71.92807, 107.892105, 107.892105]),
    ("3d_2plus1d", [35.96404, 71.92807, 107.892105, 107.892105]),
])
def test_conv_block_with_bn_matches_reference_values(conv_type, expected):
    layer = _ones_conv(conv_type, activation="relu")
    for sizes in ([4], [1, 1, 1, 1]):
        out, _ = _stream(layer, np.ones((1, 4, 2, 2, 3), np.float32), sizes)
        np.testing.assert_allclose(out[0, :, 0, 0, 0], expected, rtol=1e-6)


# (5, 1, 1) strided: a temporal-only depthwise kernel in a block's first layer (a point
# of the search space); it must not take the unstrided many-frame fast path.
@pytest.mark.parametrize("kernel_size,strides", [((3, 3, 3), (1, 2, 2)), ((5, 1, 1), (1, 2, 2)),
                                                 ((5, 1, 1), (1, 1, 1))])
@pytest.mark.parametrize("depthwise", [False, True])
def test_non_causal_3d_conv_equals_tf_conv3d_same(depthwise, kernel_size, strides):
    video = random_video((2, 6, 9, 10, 4), seed=1)
    layer = CausalConv3D(4, kernel_size, strides, depthwise=depthwise, use_batch_norm=False)
    layer.build(video.shape)
    randomize_weights(layer, seed=2)
    out, states = layer(video)
    assert states == {}
    kernel = layer.kernel.numpy()
    if depthwise:  # Compare each channel with its own single-channel conv3d.
        expected = np.concatenate([
            tf.nn.conv3d(video[..., c:c + 1], kernel[..., c:c + 1], [1, *strides, 1], "SAME").numpy()
            for c in range(4)], axis=-1)
    else:
        expected = tf.nn.conv3d(video, kernel, [1, *strides, 1], "SAME").numpy()
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("conv_type", ["3d", "2plus1d", "3d_2plus1d"])
def test_causal_pads_kt_minus_one_frames_in_front(conv_type):
    video = random_video((1, 7, 8, 8, 5), seed=3)
    layer = CausalConv3D(5, (5, 3, 3), (1, 2, 2), conv_type=conv_type, depthwise=True,
                         causal=True, activation="hard_swish", state_prefix="state_x")
    layer.build(video.shape)
    randomize_weights(layer, seed=4)
    clip, clip_states = layer(video)
    # Causality: changing frame 4 leaves outputs 0..3 unchanged.
    changed = video.copy()
    changed[:, 4] = 1.0 - changed[:, 4]
    out_changed, _ = layer(changed)
    np.testing.assert_array_equal(out_changed.numpy()[:, :4], clip.numpy()[:, :4])
    assert not np.allclose(out_changed.numpy()[:, 4], clip.numpy()[:, 4])
    # Streaming frame by frame and in random chunks equals the clip, buffer included.
    check_stream_equals_clip(layer, video, seeds=(0, 1, 2))
    buffer_shape = clip_states["state_x_stream_buffer"].shape
    spec = layer.state_specs(video.shape)["state_x_stream_buffer"]
    assert tuple(spec.shape) == tuple(buffer_shape) and spec.name == "state_x_stream_buffer"
    if conv_type == "3d":  # Before the conv: input resolution and channels.
        assert buffer_shape == (1, 4, 8, 8, 5)
        np.testing.assert_array_equal(clip_states["state_x_stream_buffer"], video[:, -4:])
    else:  # Between the spatial and the temporal conv: post-stride.
        assert buffer_shape == (1, 4, 4, 4, 5)


def test_strided_spatial_padding_is_tf_same_for_odd_and_even_sizes():
    for size in (7, 8):
        video = random_video((1, 2, size, size, 2), seed=size)
        layer = CausalConv3D(3, (1, 3, 3), (1, 2, 2), use_batch_norm=False)
        layer.build(video.shape)
        randomize_weights(layer, seed=1)
        out, _ = layer(video)
        expected = tf.nn.conv3d(video, layer.kernel, [1, 1, 2, 2, 1], "SAME")
        np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-5)
        assert out.shape[2] == (size + 1) // 2


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="conv_type"):
        CausalConv3D(3, 3, conv_type="2plus2d")
    with pytest.raises(ValueError, match="Temporal stride"):
        CausalConv3D(3, 3, strides=(2, 1, 1))
    with pytest.raises(ValueError, match="state_prefix"):
        CausalConv3D(3, (3, 1, 1), causal=True)


def test_missing_buffer_state_is_an_error_not_zeros():
    layer = CausalConv3D(3, (3, 1, 1), causal=True, state_prefix="state_y", depthwise=True)
    layer.build((1, 2, 4, 4, 3))
    with pytest.raises(ValueError, match="state_y_stream_buffer"):
        layer(random_video((1, 2, 4, 4, 3)), states={"state_other": tf.zeros([1])})


@pytest.mark.parametrize("conv_type", ["3d", "2plus1d"])
def test_round_trip(conv_type, tmp_path):
    video = random_video((1, 4, 8, 8, 4), seed=5)
    layer = CausalConv3D(6, (3, 3, 3), (1, 2, 2), conv_type=conv_type, causal=True,
                         activation="swish", kernel_l2=1e-4, state_prefix="state_z")
    layer.build(video.shape)
    randomize_weights(layer, seed=6)
    check_layer(layer, video, tmp_path)
