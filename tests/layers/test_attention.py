import numpy as np
import pytest
import tensorflow as tf

from helpers import check_layer, check_stream_equals_clip, random_video, randomize_weights
from movinet_tf.layers import PositionalEncoding, SqueezeExcitation, make_divisible


def _frames_1_to_4():
    # Shape [1, 4, 2, 1, 3]; frame t holds the value t + 1.
    return np.tile(np.arange(1, 5, dtype=np.float32).reshape(1, 4, 1, 1, 1), (1, 1, 2, 1, 3))


def _ones_se(se_type, activation, gating):
    layer = SqueezeExcitation(se_type, causal=True, activation=activation,
                              gating_activation=gating, hidden_filters=3, state_prefix="state_s")
    layer.build((1, 4, 2, 1, 3))
    for weight in layer.weights:
        weight.assign(np.ones(weight.shape, np.float32) if "kernel" in weight.path
                      else np.zeros(weight.shape, np.float32))
    return layer


@pytest.mark.parametrize("se_type,activation,gating,expected,atol", [
    ("3d", "swish", "sigmoid", [0.9998109, 1.9999969, 3, 4], 1e-6),
    ("2plus3d", "hard_swish", "hard_sigmoid", [1, 2, 3, 4], 1e-4),
])
def test_causal_se_matches_reference_values(se_type, activation, gating, expected, atol):
    layer = _ones_se(se_type, activation, gating)
    video = _frames_1_to_4()
    out, _ = layer(video)
    np.testing.assert_allclose(out.numpy()[0, :, 0, 0, 0], expected, atol=atol)
    states = {k: tf.zeros(s.shape, s.dtype) for k, s in layer.state_specs(video.shape).items()}
    for t in range(4):  # Frame by frame gives the same.
        out, states = layer(video[:, t:t + 1], states=states)
        np.testing.assert_allclose(out.numpy()[0, 0, 0, 0, 0], expected[t], atol=atol)


def test_hidden_width_rounding_matches_published_models():
    assert [make_divisible(0.25 * c, 8) for c in (24, 80, 184, 112, 384, 280, 344)] == \
        [8, 24, 48, 32, 96, 72, 88]
    assert [make_divisible(0.5 * c, 8) for c in (24, 80, 184, 112, 384, 280, 344)] == \
        [16, 40, 96, 56, 192, 144, 176]


def test_positional_encoding_is_concatenated_sin_cos_and_streams():
    layer = PositionalEncoding("state_q")
    layer.build((1, 5, 1, 1, 6))
    layer.scale.assign(1.0)
    zeros = np.zeros((1, 5, 1, 1, 6), np.float32)
    out, states = layer(zeros)
    positions = np.arange(5).reshape(-1, 1)
    rates = 1.0 / 10000 ** (2 * np.arange(3) / 6)
    expected = np.concatenate([np.sin(positions * rates), np.cos(positions * rates)], -1)
    np.testing.assert_allclose(out.numpy()[0, :, 0, 0], expected, atol=1e-6)
    assert states["state_q_pos_enc_frame_count"].numpy().tolist() == [5]
    # Continuing the stream at frame 5 gives position 5.
    more, _ = layer(zeros[:, :1], states=states)
    np.testing.assert_allclose(more.numpy()[0, 0, 0, 0, 0], np.sin(5.0), atol=1e-6)


@pytest.mark.parametrize("se_type", ["3d", "2d", "2plus3d"])
@pytest.mark.parametrize("causal", [True, False])
def test_se_types_and_round_trip(se_type, causal, tmp_path):
    video = random_video((1, 5, 4, 4, 8), seed=2)
    layer = SqueezeExcitation(se_type, causal=causal, use_positional_encoding=causal,
                              activation="hard_swish", gating_activation="hard_sigmoid",
                              state_prefix="state_r")
    layer.build(video.shape)
    randomize_weights(layer, seed=3)
    out, states = layer(video)
    expected_states = set()
    if causal and se_type != "2d":
        expected_states |= {"state_r_pool_buffer", "state_r_pool_frame_count"}
    if causal:
        expected_states.add("state_r_pos_enc_frame_count")
    assert set(states) == expected_states
    if causal:  # Frame t is gated by frames <= t only.
        changed = video.copy()
        changed[:, 3:] = 1.0 - changed[:, 3:]
        out_changed, _ = layer(changed)
        np.testing.assert_allclose(out_changed.numpy()[:, :3], out.numpy()[:, :3], atol=1e-6)
        check_stream_equals_clip(layer, video)
        assert {k: tuple(v.shape) for k, v in layer.state_specs(video.shape).items()} == \
            {k: tuple(v.shape) for k, v in states.items()}
    check_layer(layer, video, tmp_path)
