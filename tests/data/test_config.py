"""DataConfig defaults and validation."""
import dataclasses

import pytest

from movinet_tf import data


def test_defaults_are_the_builtin_quickstart():
    cfg = data.validate_config(data.DataConfig())
    assert (cfg.source, cfg.num_classes) == ("builtin", len(data.BUILTIN_CLASS_NAMES))
    assert (cfg.num_frames, cfg.temporal_stride, cfg.image_size, cfg.min_image_size) == (
        16, 2, 56, 64)
    # A default clip spans 31 source frames, so the 48-frame builtin videos leave
    # room for random start offsets.
    assert (cfg.num_frames - 1) * cfg.temporal_stride + 1 < cfg.builtin_video_frames
    assert data.num_views(dataclasses.replace(cfg, eval_num_clips=2, eval_num_crops=3)) == 6


@pytest.mark.parametrize("overrides, message", [
    (dict(source="s3"), "data.source"),
    (dict(num_frames=0), "data.num_frames"),
    (dict(random_stride_range=-1), "data.random_stride_range"),
    (dict(image_size=64, min_image_size=56), "data.min_image_size"),
    (dict(eval_num_crops=2), "data.eval_num_crops"),
    (dict(crop_area_min=0.0), "data.crop_area_min"),
    (dict(crop_aspect_min=3.0), "data.crop_aspect_min"),
    (dict(val_fraction=1.0), "data.val_fraction"),
    (dict(num_parallel_calls=0), "data.num_parallel_calls"),
    (dict(source="tfds"), "data.tfds_name"),
    (dict(source="folder"), "data.path"),
])
def test_bad_fields_name_themselves(overrides, message):
    with pytest.raises(ValueError, match=message):
        data.validate_config(dataclasses.replace(data.DataConfig(), **overrides))


def test_build_dataset_validates_its_arguments():
    with pytest.raises(TypeError, match="DataConfig"):
        data.build_dataset({"source": "builtin"}, "train", True)
    with pytest.raises(ValueError, match="split"):
        data.build_dataset(data.DataConfig(), "", True)
