"""The frame source: one frame at a time, resampled without duplicates, cropped like evaluation."""
import tracemalloc

import cv2
import numpy as np
import pytest

from movinet_tf.data import InputContract, VideoDecodeError, preprocess_eval_frames, read_video
from movinet_tf.data import render_clip, write_video
from movinet_tf.data import frames as frames_lib
from movinet_tf.data import video_io

from tests.data.video_helpers import read_indices, write_index_video, write_long_mjpeg


def test_opencv_preprocessing_matches_the_evaluation_within_1_5_over_255(tmp_path):
    rng = np.random.default_rng(0)
    # Smooth content (rendered actions) and noise, landscape, portrait and odd sizes.
    clips = [render_clip(2, 5, num_frames=3, size=64),
             rng.integers(0, 256, (3, 241, 317, 3), dtype=np.uint8),
             rng.integers(0, 256, (3, 120, 90, 3), dtype=np.uint8)]
    for clip in clips:
        for image_size, min_image_size in ((32, 32), (56, 64), (48, 57)):
            contract = InputContract(image_size=image_size, min_image_size=min_image_size)
            expected = preprocess_eval_frames(clip, image_size, min_image_size)
            got = np.stack([frames_lib.preprocess_frame(frame, contract) for frame in clip])
            assert got.shape == expected.shape
            # OpenCV rounds the resized frame to uint8 (0.5/255) and uses fixed-point weights.
            np.testing.assert_allclose(got, expected, atol=1.5 / 255, rtol=0)
            from_bgr = np.stack([frames_lib.preprocess_frame(
                cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), contract, bgr=True) for frame in clip])
            np.testing.assert_array_equal(from_bgr, got)  # the CLI's path: crop, then reorder


def test_resampling_drops_frames_and_reports_the_rate(tmp_path):
    path = write_index_video(str(tmp_path / "index.mp4"), 50, fps=25.0)
    for target, step in ((12.5, 2), (5.0, 5), (None, 1), (40.0, 1)):
        source = frames_lib.VideoFrames(path, target_fps=target)
        kept = list(source)
        indices = [frame.index for frame in kept]
        assert indices == list(range(0, 50, step))
        assert read_indices([frame.rgb for frame in kept]) == indices  # the decoded pixels too
        assert source.fps == (min(target, 25.0) if target else 25.0)  # never above the source
        assert source.expected_frames() == len(kept) and not source.ended_early()
        np.testing.assert_allclose([frame.time for frame in kept], np.asarray(indices) / 25.0)


def test_a_long_video_never_holds_more_than_a_few_frames(tmp_path):
    path = str(tmp_path / "long.avi")
    height, width, num_frames = 120, 160, 600
    write_long_mjpeg(path, num_frames, height, width)
    frame_bytes = height * width * 3
    contract = InputContract(image_size=32, min_image_size=32)
    tracemalloc.start()
    try:
        count = 0
        for frame in frames_lib.VideoFrames(path, target_fps=12.5):
            frames_lib.preprocess_frame(frame.bgr, contract, bgr=True)
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == num_frames // 2
    # The whole video is 34 MB of RGB; the iterator holds a frame or two at a time.
    assert peak < 6 * frame_bytes, peak


def test_a_truncated_file_ends_early_and_says_so(tmp_path):
    path = str(tmp_path / "cut.avi")
    write_video(path, render_clip(1, 3, num_frames=40, size=32), fps=25.0, fourcc="MJPG")
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])
    source = frames_lib.VideoFrames(path)
    kept = list(source)
    assert source.declared_frames == 40
    assert 0 < len(kept) < 40 and source.ended_early()


def test_bad_sources_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        frames_lib.VideoFrames(str(tmp_path / "missing.mp4"))
    (tmp_path / "junk.mp4").write_bytes(b"junk" * 100)
    with pytest.raises(VideoDecodeError, match="cannot open"):
        frames_lib.VideoFrames(str(tmp_path / "junk.mp4"))
    path = write_index_video(str(tmp_path / "ok.mp4"), 4)
    with pytest.raises(ValueError, match="target_fps"):
        frames_lib.VideoFrames(path, target_fps=-5)
    with pytest.raises(ValueError, match="max_frames"):
        frames_lib.VideoFrames(path, max_frames=0)


def test_read_frames_at_keeps_only_the_needed_frames(tmp_path):
    path = write_index_video(str(tmp_path / "index.mp4"), 60)
    whole, _ = read_video(path)
    indices = [7, 3, 3, 20]
    frames, decoded = video_io.read_frames_at(path, indices)
    np.testing.assert_array_equal(frames, whole[indices])
    assert decoded == 21  # stopped after the last needed frame
    frames, decoded = video_io.read_frames_at(path, [5, 70])
    assert frames is None and decoded == 60  # the video is shorter than an index


def test_prefetching_yields_the_same_frames_and_raises_in_the_caller(tmp_path):
    path = write_index_video(str(tmp_path / "index.mp4"), 40, fps=25.0)
    plain = [(f.index, read_indices([f.rgb])[0]) for f in frames_lib.VideoFrames(path, 12.5)]
    ahead = [(f.index, read_indices([f.rgb])[0])
             for f in frames_lib.VideoFrames(path, 12.5, prefetch=2)]
    assert ahead == plain and len(plain) == 20
    # Stopping early ends the decoding thread.
    source = frames_lib.VideoFrames(path, prefetch=2)
    for frame in source:
        if frame.index == 3:
            break
    assert source.decoded < 40
