"""read_video / write_video: round trip and clear errors."""
import numpy as np
import pytest

from movinet_tf.data import video_io
from tests.data import video_helpers


def test_round_trip_keeps_frames_order_colour_and_fps(tmp_path):
    frames = video_helpers.index_frames(20, size=32)
    frames[..., 0] = np.maximum(frames[..., 0], 200)        # red tint checks RGB (not BGR) order
    path = str(tmp_path / "clip.mp4")
    video_io.write_video(path, frames, fps=12.0)
    decoded, fps = video_io.read_video(path)
    assert decoded.dtype == np.uint8 and decoded.shape == (20, 32, 32, 3)
    assert fps == pytest.approx(12.0, abs=0.01)
    assert video_helpers.read_indices(decoded) == list(range(20))
    # mp4v is lossy: mean absolute error below 8 grey levels, and red stays the brightest channel.
    assert np.abs(decoded.astype(float) - frames).mean() < 8.0
    assert decoded[..., 0].mean() > decoded[..., 2].mean() + 50


def test_max_frames_stops_early(tmp_path):
    path = video_helpers.write_index_video(str(tmp_path / "clip.mp4"), 20)
    decoded, _ = video_io.read_video(path, max_frames=5)
    assert video_helpers.read_indices(decoded) == [0, 1, 2, 3, 4]


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        video_io.read_video(str(tmp_path / "nope.mp4"))


def test_empty_file_is_decode_error(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(video_io.VideoDecodeError, match="empty"):
        video_io.read_video(str(path))


def test_corrupt_file_is_decode_error_naming_the_path(tmp_path):
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(video_io.VideoDecodeError, match="corrupt.mp4"):
        video_io.read_video(str(path))


def test_write_rejects_non_uint8(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        video_io.write_video(str(tmp_path / "x.mp4"), np.zeros((2, 8, 8, 3), np.float32))
