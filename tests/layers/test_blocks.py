import numpy as np
import pytest
import tensorflow as tf

from helpers import check_layer, check_stream_equals_clip, random_video, randomize_weights
from movinet_tf.layers import ClassifierHead, MovinetBlock, Scale, SkipBlock, StochasticDepth


def test_block_starts_as_its_shortcut_because_rezero_is_zero():
    video = random_video((1, 3, 8, 8, 8), seed=0)
    block = MovinetBlock(8, 8, 24, (3, 3, 3), state_prefix="state_b")
    out, _ = block(video)
    np.testing.assert_array_equal(out.numpy(), video)  # ReZero scale starts at 0.
    assert block.skip is None


def test_skip_path_average_pool_excludes_padding():
    skip = SkipBlock(2, (1, 2, 2))
    skip.build((1, 1, 3, 3, 2))
    for weight in skip.weights:  # Identity projection, identity BN (eps aside).
        if "kernel" in weight.path:
            weight.assign(np.eye(2, dtype=np.float32).reshape(1, 1, 1, 2, 2))
    video = np.arange(18, dtype=np.float32).reshape(1, 1, 3, 3, 2)
    out = skip(video).numpy() * np.sqrt(1 + 1e-3)
    # TF 'SAME' pads one pixel on each side of the 3x3 input; each corner window
    # holds 4 real pixels and 5 padded ones, and the mean is over the 4 alone.
    np.testing.assert_allclose(out[0, 0, 1, 1], video[0, 0, 1:, 1:].mean(axis=(0, 1)), rtol=1e-5)
    np.testing.assert_allclose(out[0, 0, 0, 0], video[0, 0, :2, :2].mean(axis=(0, 1)), rtol=1e-5)


def test_stochastic_depth_drops_whole_samples_and_keeps_the_mean():
    layer = StochasticDepth(0.25)
    x = np.ones((4000, 2, 3), np.float32)
    out = layer(x, training=True).numpy()
    per_sample = out.reshape(4000, -1)
    assert set(np.unique(per_sample.min(axis=1))) <= {0.0, np.float32(1 / 0.75)}
    np.testing.assert_array_equal(per_sample.min(axis=1), per_sample.max(axis=1))
    assert abs(out.mean() - 1.0) < 0.05
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    with pytest.raises(ValueError, match="rate"):
        StochasticDepth(1.0)


@pytest.mark.parametrize("conv_type", ["3d", "2plus1d"])
def test_block_round_trip_and_states(conv_type, tmp_path):
    video = random_video((1, 4, 8, 8, 8), seed=1)
    block = MovinetBlock(8, 16, 24, (5, 3, 3), (1, 2, 2), conv_type=conv_type, se_type="2plus3d",
                         causal=True, use_positional_encoding=True, activation="hard_swish",
                         gating_activation="hard_sigmoid", stochastic_depth_rate=0.1,
                         state_prefix="state_block9_layer0")
    block.build(video.shape)
    randomize_weights(block, seed=2)
    out, states = block(video)
    assert out.shape == (1, 4, 4, 4, 16)
    assert sorted(states) == sorted([
        "state_block9_layer0_stream_buffer", "state_block9_layer0_pool_buffer",
        "state_block9_layer0_pool_frame_count", "state_block9_layer0_pos_enc_frame_count"])
    specs = block.state_specs((1, None, 8, 8, 8))
    assert list(specs) == list(states)
    for name, spec in specs.items():
        assert tuple(states[name].shape) == tuple(spec.shape) and spec.name == name, name
        assert states[name].dtype == spec.dtype, name
    assert block.output_dims([1, 4, 8, 8, 8]) == list(out.shape)
    check_stream_equals_clip(block, video)
    check_layer(block, video, tmp_path)


def test_classifier_head_outputs_float32_logits(tmp_path):
    head = ClassifierHead(7, 32, activation="hard_swish", dropout_rate=0.5)
    head.build((None, 1, 1, 1, 12))
    randomize_weights(head, seed=3)
    features = random_video((2, 1, 1, 1, 12), seed=4)
    logits = head(features)
    assert logits.shape == (2, 7) and logits.dtype == tf.float32
    check_layer(head, features, tmp_path)
    with pytest.raises(ValueError, match="num_classes"):
        ClassifierHead(0)
    scale = Scale(0.5)
    np.testing.assert_allclose(scale(np.ones((2,), np.float32)).numpy(), [0.5, 0.5])


@pytest.mark.parametrize("conv_type,se_type,kernel,strides", [
    ("2plus1d", "2plus3d", (3, 3, 3), (1, 2, 2)),  # factorised, two-half SE input, skip
    ("3d", "3d", (1, 5, 5), (1, 1, 1)),            # 3d conv, no skip (8 -> 8)
    ("3d_2plus1d", "none", (5, 1, 1), (1, 1, 1)),
])
def test_weight_shapes_are_the_weights_build_creates(conv_type, se_type, kernel, strides):
    out = 16 if strides != (1, 1, 1) else 8
    block = MovinetBlock(8, out, 24, kernel, strides, conv_type=conv_type, se_type=se_type,
                         causal=True, use_positional_encoding=se_type != "none",
                         state_prefix="state_b", name="b")
    declared = {name: slot.shape for name, slot in block.weight_shapes().items()}
    block.build((None, None, None, None, 8))
    built = {w.path.split("/", 1)[1]: tuple(w.shape) for w in block.weights}
    assert declared == built
    assert (block.skip is not None) == any(name.startswith("skip/") for name in declared)
    groups = block.weight_shapes()["se/se_reduce/kernel"].input_groups if block.se else 1
    assert groups == (2 if se_type == "2plus3d" else 1)
