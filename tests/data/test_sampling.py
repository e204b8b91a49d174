"""Frame sampling, checked on decoded videos whose frames show their own index."""
import dataclasses
import os

import numpy as np
import pytest

from movinet_tf import data
from tests.data import video_helpers

LONG, SHORT = 40, 10        # frames of the two test videos


@pytest.fixture(scope="module")
def index_tree(tmp_path_factory):
    """root/{train,val}/long/long.mp4 (40 frames) and root/{train,val}/short/short.mp4 (10)."""
    root = tmp_path_factory.mktemp("index_tree")
    for split in ("train", "val"):
        for name, count in (("long", LONG), ("short", SHORT)):
            os.makedirs(root / split / name)
            video_helpers.write_index_video(str(root / split / name / f"{name}.mp4"), count)
    return str(root)


def _config(root, **overrides):
    # Whole-frame crops, no flip, no resize: the bars reach the test untouched.
    base = data.DataConfig(source="folder", path=root, num_classes=2, num_frames=6,
                           temporal_stride=3, image_size=32, min_image_size=32,
                           crop_area_min=1.0, crop_area_max=1.0, crop_aspect_min=1.0,
                           crop_aspect_max=1.0, random_flip=False, batch_size=1,
                           eval_batch_size=1, num_parallel_calls=2)
    return dataclasses.replace(base, **overrides)


def _train_clips(cfg, epochs):
    """{label: [indices of each sampled clip]} over `epochs` passes of one dataset."""
    dataset = data.build_dataset(cfg, "train", training=True)
    clips = {0: [], 1: []}
    for _ in range(epochs):
        for video, label in dataset:
            clips[int(label[0])].append(video_helpers.read_indices(video[0]))
    return clips


def test_train_clips_use_the_stride_a_random_start_and_loop_short_videos(index_tree):
    clips = _train_clips(_config(index_tree), epochs=12)
    span = (6 - 1) * 3 + 1
    starts = set()
    for indices in clips[0]:                                   # label 0 = "long"
        start = indices[0]
        assert indices == [start + 3 * i for i in range(6)]
        assert 0 <= start <= LONG - span
        starts.add(start)
    assert len(starts) >= 4, f"start frames barely vary: {sorted(starts)}"
    # "short" has 10 < 16 frames: the clip starts at 0 and loops around.
    assert all(indices == [0, 3, 6, 9, 2, 5] for indices in clips[1])
    assert len(clips[1]) == 12


@pytest.mark.parametrize("stride, stride_range, expected", [(3, 2, {1, 2, 3, 4}),
                                                            (2, 3, {1, 2, 3, 4})])
def test_random_stride_is_uniform_over_the_half_open_range(index_tree, stride, stride_range,
                                                            expected):
    cfg = _config(index_tree, temporal_stride=stride, random_stride_range=stride_range)
    clips = _train_clips(cfg, epochs=30)
    strides = set()
    for indices in clips[0]:
        steps = set(np.diff(indices).tolist())
        assert len(steps) == 1, f"clip {indices} mixes strides"
        strides |= steps
    # [max(s - r, 1), s + r): the upper end s + r never occurs.
    assert strides == expected


def test_eval_clips_are_evenly_spaced(index_tree):
    cfg = _config(index_tree, eval_num_clips=3)
    videos = list(data.build_dataset(cfg, "val", training=False))
    (long_video, long_label), (short_video, _) = videos
    assert long_video.shape == (1, 3, 6, 32, 32, 3) and int(long_label[0]) == 0
    starts = [video_helpers.read_indices(clip)[0] for clip in long_video[0]]
    assert starts == [0, 12, 24]                              # last clip ends at frame 39
    assert video_helpers.read_indices(long_video[0, 2]) == [24, 27, 30, 33, 36, 39]
    # Too short for one clip: every clip is the looped clip from frame 0.
    for clip in short_video[0]:
        assert video_helpers.read_indices(clip) == [0, 3, 6, 9, 2, 5]


def test_single_eval_clip_is_the_central_one(index_tree):
    video, _ = next(iter(data.build_dataset(_config(index_tree), "val", training=False)))
    assert video.shape == (1, 6, 32, 32, 3)
    assert video_helpers.read_indices(video[0]) == [12, 15, 18, 21, 24, 27]
