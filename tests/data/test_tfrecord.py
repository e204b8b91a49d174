"""Kinetics-style SequenceExample TFRecords: write, then read through the pipeline."""
import dataclasses

import pytest
import tensorflow as tf

from movinet_tf import data
from movinet_tf.data import tfrecord
from tests.data import video_helpers


def _config(pattern, **overrides):
    base = data.DataConfig(source="tfrecord", path=pattern, num_classes=4, num_frames=5,
                           temporal_stride=2, image_size=32, min_image_size=32, batch_size=2,
                           eval_batch_size=3, random_flip=False)
    return dataclasses.replace(base, **overrides)


@pytest.fixture(scope="module")
def record_glob(tmp_path_factory):
    folder = tmp_path_factory.mktemp("records")
    frames = video_helpers.index_frames(20)
    data.write_tfrecord(str(folder / "val-0.tfrecord"), [(frames, 3), (frames[:12], 1)])
    data.write_tfrecord(str(folder / "val-1.tfrecord"), [(frames[:4], 0)])
    return str(folder / "val-*.tfrecord")


def test_record_layout_matches_the_model_garden(record_glob):
    raw = next(iter(tf.data.TFRecordDataset(tfrecord.list_files(record_glob))))
    example = tf.train.SequenceExample.FromString(raw.numpy())
    assert example.context.feature["clip/label/index"].int64_list.value == [3]
    encoded = example.feature_lists.feature_list["image/encoded"].feature
    assert len(encoded) == 20 and encoded[0].bytes_list.value[0][:2] == b"\xff\xd8"   # JPEG


def test_round_trip_through_the_eval_pipeline(record_glob):
    (video, label), = list(data.build_dataset(_config(record_glob), "val", training=False))
    assert video.shape == (3, 5, 32, 32, 3) and label.numpy().tolist() == [3, 1, 0]
    # 20 frames: central clip starts at (20 - 9) // 2 = 5; 12 frames: at 1;
    # 4 frames: too short, looped from 0.
    assert video_helpers.read_indices(video[0]) == [5, 7, 9, 11, 13]
    assert video_helpers.read_indices(video[1]) == [1, 3, 5, 7, 9]
    assert video_helpers.read_indices(video[2]) == [0, 2, 0, 2, 0]


def test_training_reads_random_clips_with_the_stride(record_glob):
    cfg = _config(record_glob, crop_area_min=1.0, crop_aspect_min=1.0, crop_aspect_max=1.0)
    batches = list(data.build_dataset(cfg, "val", training=True))
    assert [b[0].shape[0] for b in batches] == [2]              # 3 videos, partial batch dropped
    frames_per_label = {3: 20, 1: 12, 0: 4}
    for clip, label in zip(*batches[0]):
        indices = video_helpers.read_indices(clip)
        count = frames_per_label[int(label)]
        start = indices[0]
        assert 0 <= start <= max(count - 9, 0)
        assert indices == [(start + 2 * i) % count for i in range(5)]


def test_missing_files_and_bad_labels(record_glob, tmp_path):
    with pytest.raises(FileNotFoundError, match="No TFRecord files"):
        data.build_dataset(_config(str(tmp_path / "none-*.tfrecord")), "val", False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="label out of range"):
        list(data.build_dataset(_config(record_glob, num_classes=2), "val", False))
