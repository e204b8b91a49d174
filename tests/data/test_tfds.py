"""TFDS source, exercised with tfds.testing.mock_data (no download, no prepared data)."""
import dataclasses

import pytest
import tensorflow_datasets as tfds

from movinet_tf import data


def _config(**overrides):
    base = data.DataConfig(source="tfds", tfds_name="ucf101", path="/nonexistent/tfds",
                           num_classes=101, num_frames=4, temporal_stride=2, image_size=24,
                           min_image_size=28, batch_size=2, eval_batch_size=2)
    return dataclasses.replace(base, **overrides)


def test_ucf101_through_mock_data():
    cfg = _config(eval_num_crops=3)
    with tfds.testing.mock_data(num_examples=3):
        names = data.class_names(cfg)
        train = list(data.build_dataset(cfg, "train", training=True))
        test = list(data.build_dataset(cfg, "test", training=False))
    assert len(names) == 101 and names[0] == "ApplyEyeMakeup"
    assert [b[0].shape for b in train] == [(2, 4, 24, 24, 3)]            # 3 videos, 1 dropped
    assert [b[0].shape for b in test] == [(2, 3, 4, 24, 24, 3), (1, 3, 4, 24, 24, 3)]
    for video, label in train + test:
        assert 0.0 <= float(video.numpy().min()) and float(video.numpy().max()) <= 1.0
        assert all(0 <= int(x) < 101 for x in label)


def test_wrong_class_count_and_unknown_keys_are_errors():
    with tfds.testing.mock_data(num_examples=1):
        with pytest.raises(ValueError, match="num_classes is 10 but the tfds source has 101"):
            data.build_dataset(_config(num_classes=10), "train", True)
        with pytest.raises(ValueError, match="tfds_video_key is 'frames'"):
            data.build_dataset(_config(tfds_video_key="frames"), "train", True)
