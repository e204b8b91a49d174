"""Folder and CSV sources, and unreadable videos that are skipped and counted."""
import dataclasses
import os

import numpy as np
import pytest

from movinet_tf import data
from movinet_tf.data import files
from tests.data import video_helpers


def _write(path, num_frames=6, size=32):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return video_helpers.write_index_video(str(path), num_frames, size)


def _config(**overrides):
    base = data.DataConfig(source="folder", num_classes=3, num_frames=4, temporal_stride=1,
                           image_size=16, min_image_size=16, batch_size=2, eval_batch_size=2,
                           num_parallel_calls=2)
    return dataclasses.replace(base, **overrides)


def test_folder_with_split_folders(tmp_path):
    for split, count in (("train", 2), ("val", 1)):
        for name in ("cat", "ant", "bee"):
            for i in range(count):
                _write(tmp_path / split / name / f"{name}{i}.avi")
    (tmp_path / "train" / "ant" / "notes.txt").write_text("not a video")
    cfg = _config(path=str(tmp_path))
    assert data.class_names(cfg) == ["ant", "bee", "cat"]
    paths, labels = files.list_folder(cfg, "train")
    assert len(paths) == 6 and labels == [0, 0, 1, 1, 2, 2]
    batches = list(data.build_dataset(cfg, "val", training=False))
    assert [b[0].shape for b in batches] == [(2, 4, 16, 16, 3), (1, 4, 16, 16, 3)]
    assert np.concatenate([b[1].numpy() for b in batches]).tolist() == [0, 1, 2]
    train = list(data.build_dataset(cfg, "train", training=True))
    assert len(train) == 3 and sorted(np.concatenate([b[1] for b in train])) == [0, 0, 1, 1, 2, 2]


def test_folder_without_split_folders_is_split_by_a_stable_hash(tmp_path):
    for name in ("a", "b", "c"):
        for i in range(10):
            (tmp_path / name).mkdir(exist_ok=True)
            (tmp_path / name / f"v{i}.mp4").write_bytes(b"x")      # listing only, never decoded
    cfg = _config(path=str(tmp_path), val_fraction=0.3)
    train, _ = files.list_folder(cfg, "train")
    val, _ = files.list_folder(cfg, "val")
    assert sorted(train + val) == sorted(str(p) for p in tmp_path.glob("*/*.mp4"))
    assert not set(train) & set(val)
    assert 3 <= len(val) <= 16                   # ~30% of 30; a broken hash gives 0 or 30
    assert files.list_folder(cfg, "val")[0] == val
    with pytest.raises(ValueError, match="test"):
        files.list_folder(cfg, "test")


def test_csv_with_names_indices_and_a_split_column(tmp_path):
    _write(tmp_path / "videos" / "x.mp4")
    _write(tmp_path / "videos" / "y.mp4")
    _write(tmp_path / "videos" / "z.mp4")
    (tmp_path / "list.csv").write_text(
        "path,label,split\n"
        "videos/x.mp4,run,train\n"
        "videos/y.mp4,jump,train\n"
        "videos/z.mp4,1,val\n")                   # 1 = "run" (names sorted: jump, run)
    cfg = _config(source="csv", path=str(tmp_path / "list.csv"), num_classes=2)
    assert data.class_names(cfg) == ["jump", "run"]
    assert files.list_csv(cfg, "train") == ([str(tmp_path / "videos" / "x.mp4"),
                                             str(tmp_path / "videos" / "y.mp4")], [1, 0])
    (video, label), = list(data.build_dataset(cfg, "val", training=False))
    assert video.shape == (1, 4, 16, 16, 3) and label.numpy().tolist() == [1]


def test_csv_per_split_files_and_bad_rows(tmp_path):
    _write(tmp_path / "a.mp4")
    (tmp_path / "train.csv").write_text("a.mp4,0\na.mp4,2\n")
    (tmp_path / "val.csv").write_text("a.mp4,1\n")
    cfg = _config(source="csv", path=str(tmp_path / "{split}.csv"))
    assert data.class_names(cfg) == ["0", "1", "2"]
    assert files.list_csv(cfg, "val")[1] == [1]
    (tmp_path / "val.csv").write_text("a.mp4,1\na.mp4,7\n")
    with pytest.raises(ValueError, match=r"val.csv:2: label 7 out of range"):
        files.list_csv(cfg, "val")
    (tmp_path / "val.csv").write_text("a.mp4,walk\n")
    with pytest.raises(ValueError, match="unknown class 'walk'"):
        files.list_csv(cfg, "val")


def test_unreadable_videos_are_skipped_counted_and_not_fatal(tmp_path):
    for name in ("a", "b", "c"):
        _write(tmp_path / "train" / name / "good.mp4")
    (tmp_path / "train" / "a" / "empty.mp4").write_bytes(b"")
    (tmp_path / "train" / "b" / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    cfg = _config(path=str(tmp_path), batch_size=1)
    stats = data.DecodeStats()
    dataset = data.build_dataset(cfg, "train", training=True, stats=stats)
    for epoch in (1, 2):
        labels = sorted(int(label[0]) for _, label in dataset)
        assert labels == [0, 1, 2]                 # the three good videos, every epoch
        assert stats.last_pass == (3, 2)           # counted when the pass ended
    assert sorted(os.path.basename(p) for p in stats.skipped_paths) == [
        "corrupt.mp4", "corrupt.mp4", "empty.mp4", "empty.mp4"]


def test_missing_sources_and_class_count_mismatch_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.build_dataset(_config(path=str(tmp_path / "nowhere")), "train", True)
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        data.build_dataset(_config(source="csv", path=str(tmp_path / "missing.csv")), "train",
                           True)
    _write(tmp_path / "tree" / "only" / "v.mp4")
    with pytest.raises(ValueError, match="num_classes is 3 but the folder source has 1"):
        data.build_dataset(_config(path=str(tmp_path / "tree")), "train", True)


def test_home_relative_paths_are_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("a", "b", "c"):
        _write(tmp_path / "videos" / "train" / name / "v.mp4")
    assert data.class_names(_config(path="~/videos")) == ["a", "b", "c"]


def test_videos_in_sub_folders_of_a_class_are_listed(tmp_path):
    for name in ("ant", "bee", "cat"):
        _write(tmp_path / "train" / name / f"{name}.avi")
        _write(tmp_path / "val" / name / f"{name}.avi")
    nested = [_write(tmp_path / "train" / "ant" / "day1" / "a.avi"),
              _write(tmp_path / "train" / "ant" / "day1" / "deeper" / "b.avi")]
    _write(tmp_path / "train" / "bee" / ".hidden" / "c.avi")  # hidden folders are skipped
    paths, labels = files.list_folder(_config(path=str(tmp_path)), "train")
    relative = sorted(os.path.relpath(p, tmp_path) for p in paths)
    assert relative == sorted(["train/ant/ant.avi", "train/ant/day1/a.avi",
                               "train/ant/day1/deeper/b.avi", "train/bee/bee.avi",
                               "train/cat/cat.avi"])
    assert all(str(path) in paths for path in nested)
    by_path = dict(zip(paths, labels))
    assert {by_path[str(p)] for p in nested} == {0}   # both belong to class 'ant'


def test_an_empty_class_folder_is_an_error_naming_it(tmp_path):
    for name in ("ant", "bee"):
        _write(tmp_path / "train" / name / f"{name}.avi")
    (tmp_path / "train" / "empty_cls" / "sub").mkdir(parents=True)
    (tmp_path / "train" / "empty_cls" / "notes.txt").write_text("no video here")
    with pytest.raises(ValueError, match=r"Class folder .*empty_cls' holds no video"):
        files.folder_class_names(_config(path=str(tmp_path)))
