"""The builtin synthetic set: determinism, caching, and classes that need temporal order."""
import dataclasses
import json
import os

import numpy as np
import pytest

from movinet_tf import data
from movinet_tf.data import builtin, preprocess

_SMALL = dict(builtin_train_per_class=1, builtin_val_per_class=1, builtin_video_frames=12,
              builtin_video_size=32, num_frames=8, temporal_stride=1, image_size=32,
              min_image_size=32, batch_size=2, eval_batch_size=4)


def _small_config(path, **overrides):
    return dataclasses.replace(data.DataConfig(path=str(path), **_SMALL), **overrides)


def test_ten_classes_and_a_flip_map_that_is_an_involution():
    assert len(data.class_names(data.DataConfig())) == 10
    flip = builtin.FLIP_LABEL_MAP
    assert [flip[flip[i]] for i in range(10)] == list(range(10))
    names = builtin.CLASS_NAMES
    assert names[flip[names.index("move_right")]] == "move_left"
    assert names[flip[names.index("rotate_cw")]] == "rotate_ccw"


@pytest.mark.parametrize("pair", range(5))
def test_second_class_of_each_pair_is_the_first_played_backwards(pair):
    for seed in (0, 1):
        forward = builtin.render_clip(2 * pair, seed, num_frames=10, size=32)
        backward = builtin.render_clip(2 * pair + 1, seed, num_frames=10, size=32)
        np.testing.assert_array_equal(backward, forward[::-1])
        assert not np.array_equal(forward[0], forward[-1])        # the clip does change


# Pose variable that carries each pair's motion, and the period it wraps with.
_MOTION = {0: ("x", 32.0), 1: ("y", 32.0), 2: ("angle", 2 * np.pi), 3: ("scale", None),
           4: ("opacity", None)}


def _wrapped_step(values, period):
    steps = np.diff(values)
    if period is None:
        return steps
    return (steps + period / 2) % period - period / 2


@pytest.mark.parametrize("pair", range(5))
def test_single_frames_cannot_tell_a_pair_apart_but_the_order_can(pair):
    key, period = _MOTION[pair]
    forward, backward = [], []
    for seed in range(120):
        for label, poses in ((2 * pair, forward), (2 * pair + 1, backward)):
            _, pose = builtin.render_clip(label, seed + 1000 * label, num_frames=6, size=32,
                                          return_pose=True)
            poses.append(pose[key] % period if period else np.log(pose[key]))
    forward, backward = np.array(forward), np.array(backward)
    spread = forward.std()
    assert spread > 0
    # At every frame index the motion variable has the same distribution in both
    # classes: means within 0.4 standard deviations (120 samples each; a real gap,
    # e.g. frame 0 of grow always smaller than of shrink, would be >= 1 std).
    for t in range(6):
        assert abs(forward[:, t].mean() - backward[:, t].mean()) < 0.4 * spread
        assert abs(forward[:, t].std() - backward[:, t].std()) < 0.3 * spread
    # Over time it moves one way in the first class and the other way in the second.
    forward_steps = np.median([np.median(_wrapped_step(v, period)) for v in forward])
    backward_steps = np.median([np.median(_wrapped_step(v, period)) for v in backward])
    assert forward_steps > 0 > backward_steps


def test_generation_is_deterministic_and_seeded(tmp_path):
    first = data.ensure_builtin(_small_config(tmp_path / "a"))
    second = data.ensure_builtin(_small_config(tmp_path / "b"))
    other_seed = data.ensure_builtin(_small_config(tmp_path / "c", builtin_seed=1))
    paths, labels = builtin.list_videos(first, "train")
    assert labels == list(range(10)) and len(paths) == 10
    for path in paths:
        relative = os.path.relpath(path, first)
        a, fps = data.read_video(path)
        b, _ = data.read_video(os.path.join(second, relative))
        c, _ = data.read_video(os.path.join(other_seed, relative))
        assert a.shape == (12, 32, 32, 3) and fps == pytest.approx(builtin.FPS)
        np.testing.assert_array_equal(a, b)
        assert np.abs(a.astype(int) - c).mean() > 10
    manifest = json.load(open(os.path.join(first, "manifest.json")))
    assert manifest["splits"] == {"train": 10, "val": 10}
    assert manifest["classes"] == list(builtin.CLASS_NAMES)


def test_cache_is_reused_and_guarded(tmp_path, monkeypatch):
    monkeypatch.setenv("MOVINET_CACHE", str(tmp_path / "cache"))
    cfg = _small_config("")
    root = data.ensure_builtin(cfg)
    assert root.startswith(str(tmp_path / "cache" / "builtin") + os.sep)
    assert os.listdir(os.path.dirname(root)) == [os.path.basename(root)]   # no temp dir left
    manifest = os.path.join(root, "manifest.json")
    stamp = os.stat(manifest).st_mtime_ns
    assert data.ensure_builtin(cfg) == root and os.stat(manifest).st_mtime_ns == stamp
    # Other parameters hash to another folder ...
    assert data.ensure_builtin(dataclasses.replace(cfg, builtin_video_frames=10)) != root
    # ... and an explicit path holding other parameters is refused, not silently reused.
    with pytest.raises(ValueError, match="generated with"):
        data.ensure_builtin(dataclasses.replace(cfg, path=root, builtin_seed=5))


def test_pipeline_relabels_flipped_clips(tmp_path):
    cfg = _small_config(tmp_path, crop_area_min=1.0, crop_aspect_min=1.0, crop_aspect_max=1.0,
                        num_frames=12, batch_size=10)
    root = data.ensure_builtin(cfg)
    paths, labels = builtin.list_videos(root, "train")
    sources = [preprocess.preprocess_eval_frames(data.read_video(p)[0], 32, 32) for p in paths]
    flipped_seen = 0
    for epoch_videos, epoch_labels in list(data.build_dataset(cfg, "train", True).repeat(3)):
        for video, label in zip(epoch_videos.numpy(), epoch_labels.numpy()):
            errors = [(np.abs(video - s).max(), i, False) for i, s in enumerate(sources)]
            errors += [(np.abs(video - s[:, :, ::-1]).max(), i, True)
                       for i, s in enumerate(sources)]
            error, source, flipped = min(errors)
            assert error < 1e-5
            expected = builtin.FLIP_LABEL_MAP[labels[source]] if flipped else labels[source]
            assert label == expected
            flipped_seen += flipped and expected != labels[source]
    assert flipped_seen > 0


def test_training_pipeline_is_reproducible_for_a_seed(tmp_path):
    cfg = _small_config(tmp_path, batch_size=5)
    first = [v.numpy() for v, _ in data.build_dataset(cfg, "train", True)]
    again = [v.numpy() for v, _ in data.build_dataset(cfg, "train", True)]
    other = [v.numpy() for v, _ in data.build_dataset(dataclasses.replace(cfg, seed=3),
                                                      "train", True)]
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert np.abs(np.stack(first) - np.stack(other)).mean() > 0.01


def test_cache_dir_is_movinet_cache_and_reads_the_old_name(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MOVINET_CACHE", str(tmp_path / "new"))
    monkeypatch.setenv("MOVINET_TF_CACHE", str(tmp_path / "old"))
    assert builtin.cache_dir() == str(tmp_path / "new")
    monkeypatch.delenv("MOVINET_CACHE")
    assert builtin.cache_dir() == str(tmp_path / "old")
    assert "MOVINET_TF_CACHE is deprecated" in caplog.text
    monkeypatch.delenv("MOVINET_TF_CACHE")
    assert builtin.cache_dir() == os.path.join(os.path.expanduser("~"), ".cache", "movinet_tf")
