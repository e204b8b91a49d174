"""File sources decode only what a clip needs, and sample the same frames as the whole video."""
import dataclasses
import tracemalloc

import numpy as np
import pytest
import tensorflow as tf

from movinet_tf.data import DataConfig, DecodeStats, read_video, render_clip, write_video
from movinet_tf.data import pipeline, video_io
from tests.data import video_helpers


def _whole_video_clip(cfg, training, path, seed):
    """Today's reference: decode every frame, then sample and crop in memory."""
    frames, _ = read_video(path)
    clip_fn = pipeline._make_clip_fn(cfg, training, encoded=False)
    return clip_fn(tf.constant(frames), tf.constant(0), tf.constant(seed, tf.int64))[0].numpy()


def _file_clip(cfg, training, path, seed):
    clip_fn = pipeline._make_file_clip_fn(cfg, training, DecodeStats())
    video, _, ok = clip_fn(tf.constant(path), tf.constant(0), tf.constant(seed, tf.int64))
    assert bool(ok)
    return video.numpy()


@pytest.mark.parametrize("training,overrides", [
    (True, {}),
    (True, {"random_stride_range": 1}),
    (True, {"interleave_count": 2, "interleave_index": 1}),     # ensemble members
    (False, {}),
    (False, {"eval_num_clips": 3, "eval_num_crops": 3}),         # multi-clip eval
    (False, {"interleave_count": 2, "interleave_index": 0, "eval_num_clips": 2}),
])
def test_same_frames_as_decoding_the_whole_video(tmp_path, training, overrides):
    cfg = dataclasses.replace(DataConfig(), num_frames=8, temporal_stride=2, image_size=32,
                              min_image_size=36, **overrides)
    long_path = video_helpers.write_index_video(str(tmp_path / "long.mp4"), 60, size=48)
    short_path = video_helpers.write_index_video(str(tmp_path / "short.mp4"), 10, size=48)
    for path in (long_path, short_path):          # the short one loops
        for seed in (0, 1, 7):
            np.testing.assert_array_equal(_file_clip(cfg, training, path, seed),
                                          _whole_video_clip(cfg, training, path, seed))


def test_a_truncated_video_is_sampled_with_its_real_length(tmp_path):
    path = str(tmp_path / "cut.avi")
    write_video(path, video_helpers.index_frames(60, 48), fps=25.0, fourcc="MJPG")
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])
    declared, _ = video_io.probe_video(path)
    real = len(read_video(path)[0])
    assert declared == 60 and real < 40
    cfg = dataclasses.replace(DataConfig(), num_frames=8, temporal_stride=4, image_size=32,
                              min_image_size=36, eval_num_clips=2)
    np.testing.assert_array_equal(_file_clip(cfg, False, path, 0),
                                  _whole_video_clip(cfg, False, path, 0))


def test_reading_a_clip_of_a_long_video_holds_only_its_frames(tmp_path):
    path = str(tmp_path / "long.avi")
    height, width, num_frames = 120, 160, 900
    video_helpers.write_long_mjpeg(path, num_frames, height, width)
    indices = np.arange(400, 432, 2)                 # a 16-frame clip in the middle
    tracemalloc.start()
    try:
        frames, decoded = video_io.read_frames_at(path, indices)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames.shape == (16, height, width, 3) and decoded == 431
    # 16 kept frames (+ the stacked copy and one in flight); the video is 52 MB of RGB.
    assert peak < 40 * height * width * 3, peak


def test_unreadable_files_are_still_skipped_and_counted(tmp_path):
    root = tmp_path / "videos"
    for split in ("train", "val"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            write_video(str(root / split / name / "ok.mp4"),
                        render_clip(0, 1, num_frames=12, size=32), fps=25.0)
    (root / "val" / "a" / "broken.mp4").write_bytes(b"junk" * 64)
    cfg = dataclasses.replace(DataConfig(), source="folder", path=str(root), num_classes=2,
                              num_frames=4, image_size=32, min_image_size=32, eval_batch_size=8)
    stats = DecodeStats()
    batches = list(pipeline.build_dataset(cfg, "val", training=False, stats=stats))
    assert sum(int(video.shape[0]) for video, _ in batches) == 2
    assert stats.last_pass == (2, 1)
