"""movinet_tf.streaming.stream_logits: the one per-frame loop (fresh states, lazy, per frame)."""
import itertools

import numpy as np

from movinet_tf import streaming


class _RunningMean:
    """A streamer of the `reset`/`step` protocol whose logits are the mean of the frames so far."""

    def __init__(self):
        self.resets = 0
        self.reset()

    def reset(self):
        self.total, self.count = 0.0, 0
        self.resets += 1

    def step(self, frame):
        self.total, self.count = self.total + frame.mean(axis=(0, 1)), self.count + 1
        return self.total / self.count


def test_stream_logits_yields_each_frames_logits_from_fresh_states():
    frames = np.random.default_rng(0).uniform(size=(6, 4, 4, 3)).astype(np.float32)
    model = _RunningMean()
    model.step(frames[0] * 100)  # Left-over state that must not leak into the stream.
    out = list(streaming.stream_logits(model, frames))
    assert model.resets == 2
    expected = np.cumsum(frames.mean(axis=(1, 2)), axis=0) / np.arange(1, 7)[:, None]
    np.testing.assert_allclose(np.stack([logits for _, logits in out]), expected, rtol=1e-6)
    assert all(frame is frames[i] or np.array_equal(frame, frames[i])
               for i, (frame, _) in enumerate(out))


def test_stream_logits_is_lazy_over_an_endless_stream():
    endless = (np.full((2, 2, 3), i, np.float32) for i in itertools.count())
    first = [logits for _, logits in itertools.islice(
        streaming.stream_logits(_RunningMean(), endless), 3)]
    np.testing.assert_allclose(np.stack(first)[:, 0], [0.0, 0.5, 1.0])
