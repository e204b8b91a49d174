import numpy as np
import pytest
import tensorflow as tf

from helpers import check_stream_equals_clip, random_video
from movinet_tf.layers import CumulativeGlobalAveragePooling3D


def _layer(causal):
    layer = CumulativeGlobalAveragePooling3D(causal=causal, stateful=True, state_prefix="state_p")
    layer.build(None)
    return layer


def test_causal_output_is_the_running_mean_of_frame_means():
    video = random_video((2, 6, 3, 4, 5), seed=0)
    out, states = _layer(True)(video)
    frame_means = video.mean(axis=(2, 3), keepdims=True)
    expected = np.cumsum(frame_means, axis=1) / np.arange(1, 7).reshape(1, 6, 1, 1, 1)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)
    assert out.shape == (2, 6, 1, 1, 5)
    assert states["state_p_pool_frame_count"].numpy().tolist() == [6]
    assert states["state_p_pool_frame_count"].dtype == tf.int32


@pytest.mark.parametrize("causal", [True, False])
def test_streaming_in_chunks_equals_the_clip(causal):
    layer = _layer(causal)
    video = random_video((1, 9, 4, 4, 3), seed=1)
    # Per-frame running means (causal), or the mean of every frame seen so far.
    clip = check_stream_equals_clip(layer, video, seeds=(0, 1, 2), atol=1e-6)
    specs = layer.state_specs(video.shape)
    assert {k: (tuple(v.shape), v.dtype) for k, v in specs.items()} == {
        "state_p_pool_buffer": ((1, 1, 1, 1, 3), tf.float32),
        "state_p_pool_frame_count": ((1,), tf.int32)}
    if not causal:  # The head pool ends the stream at exactly the clip mean.
        np.testing.assert_allclose(clip, video.mean(axis=(1, 2, 3), keepdims=True), atol=1e-6)


@pytest.mark.slow
def test_long_stream_stays_exact():
    """20,000 frames, one at a time, against a float64 running mean (slow: 20,000 calls)."""
    channels, frames = 16, 20000
    rng = np.random.default_rng(0)
    video = rng.uniform(0.0, 1.0, (frames, 1, 2, 2, channels)).astype(np.float32)
    layer = _layer(False)
    step = tf.function(lambda x, s: layer(x, states=s))
    states = {k: tf.zeros(s.shape, s.dtype)
              for k, s in layer.state_specs(video[:1].shape).items()}
    worst = 0.0
    reference = np.cumsum(video.astype(np.float64).mean(axis=(2, 3)), axis=0)
    reference /= np.arange(1, frames + 1).reshape(-1, 1, 1)
    for t in range(frames):
        out, states = step(video[t][None], states)
        if t % 1000 == 999 or t == frames - 1:
            worst = max(worst, float(np.abs(out.numpy().reshape(-1) - reference[t, 0]).max()))
    print(f"max |CGAP - float64| over {frames} frames: {worst:.2e}")
    assert states["state_p_pool_frame_count"].numpy().tolist() == [frames]
    assert worst < 1e-4


def test_a_pool_without_state_returns_no_states():
    layer = CumulativeGlobalAveragePooling3D(causal=False)
    out, states = layer(random_video((1, 3, 2, 2, 4)))
    assert states == {} and out.shape == (1, 1, 1, 1, 4)
    assert layer.state_specs((1, 3, 2, 2, 4)) == {}
