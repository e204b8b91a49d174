import numpy as np
import pytest
import tensorflow as tf

from helpers import check_layer, random_video
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
    clip, _ = layer(video)
    states = {k: tf.zeros(s.shape, s.dtype) for k, s in layer.state_specs(1, 3).items()}
    outputs, start = [], 0
    for size in (2, 1, 4, 2):
        out, states = layer(video[:, start:start + size], states=states)
        outputs.append(out.numpy())
        start += size
    if causal:
        np.testing.assert_allclose(np.concatenate(outputs, 1), clip.numpy(), atol=1e-6)
    else:  # The head pool ends the stream at exactly the clip mean.
        np.testing.assert_allclose(outputs[-1], clip.numpy(), atol=1e-6)
        np.testing.assert_allclose(clip.numpy(), video.mean(axis=(1, 2, 3), keepdims=True),
                                   atol=1e-6)


def test_long_stream_stays_exact():
    """20,000 frames, one at a time, against a float64 running mean."""
    channels, frames = 16, 20000
    rng = np.random.default_rng(0)
    video = rng.uniform(0.0, 1.0, (frames, 1, 2, 2, channels)).astype(np.float32)
    layer = _layer(False)
    step = tf.function(lambda x, s: layer(x, states=s))
    states = {k: tf.zeros(s.shape, s.dtype) for k, s in layer.state_specs(1, channels).items()}
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


def test_stateless_pool_returns_no_states(tmp_path):
    layer = CumulativeGlobalAveragePooling3D(causal=False)
    out, states = layer(random_video((1, 3, 2, 2, 4)))
    assert states == {} and out.shape == (1, 1, 1, 1, 4)
    check_layer(_layer(True), random_video((1, 3, 2, 2, 4)), tmp_path)
