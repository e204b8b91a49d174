"""Every bad input a user tried (docs: shared/reference/bad_input_cases.md), through the real CLIs.

Each case runs the CLI in a subprocess and must end with exit status 2 and one
line ``error: ...`` naming the problem: no traceback, no TensorFlow log line,
and every file of the run folder byte-identical afterwards.
"""
import os

import numpy as np
import pytest

from tests.cli.conftest import assert_one_line_error, run_cli, train_args, tree_hash

SAVED_MODEL = "export/export_saved_model.py"
TFLITE = "export/export_tflite.py"


def _duplicate_key_config(tmp):
    path = tmp / "dup.yaml"
    text = open(os.path.join("movinet_tf", "configs", "tiny.yaml")).read()
    path.write_text(text + "\ntrain:\n  steps: 2\n")
    return path


def _random_index(tmp):
    (tmp / "random.index").write_bytes(np.random.default_rng(0).bytes(512))
    (tmp / "random.data-00000-of-00001").write_bytes(b"")
    return tmp / "random"


def _csv_of_missing_files(tmp):
    path = tmp / "missing.csv"
    path.write_text("".join(f"gone_{i}.mp4,{'ab'[i % 2]}\n" for i in range(8)))
    return path


def _run_without_checkpoint(run, tmp):
    folder = tmp / "no_checkpoint"
    folder.mkdir()
    (folder / "config.yaml").write_bytes((run / "config.yaml").read_bytes())
    return folder


def _corrupt_video(tmp):
    path = tmp / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    return path


# (id, argv from (run, tmp, videos), the text the error line must contain). The other
# out-of-range numbers (negative learning rate, dropout 1.5, ...) take the same path as
# the NaN one and are covered in tests/test_config.py.
CASES = [
    ("nan_learning_rate",
     lambda run, tmp, videos: train_args("--config", "tiny", "--model_dir", run,
                                         sets=["train.base_learning_rate=.nan"]),
     "'train.base_learning_rate' is nan"),
    ("set_error_names_the_override",
     lambda run, tmp, videos: train_args("--config", "tiny", "--model_dir", run,
                                         sets=["train.steps=ten"]),
     "(from --set train.steps=ten)"),
    ("duplicate_yaml_key",
     lambda run, tmp, videos: train_args("--config", _duplicate_key_config(tmp),
                                         "--model_dir", run),
     "duplicate key 'train'"),
    ("restart_with_another_architecture",
     lambda run, tmp, videos: train_args("--model_dir", run, sets=["model.conv_type=3d"]),
     "model.conv_type ('2plus1d' -> '3d')"),
    ("eval_with_a_config_that_lacks_the_runs_data",
     lambda run, tmp, videos: train_args("--config", "tiny", "--model_dir", run, "--mode", "eval"),
     "--config tiny differs from"),
    ("eval_with_another_image_size",
     lambda run, tmp, videos: train_args("--model_dir", run, "--mode", "eval",
                                         sets=["data.image_size=24", "data.min_image_size=24"]),
     "data.image_size (32 -> 24)"),
    ("eval_without_a_checkpoint",
     lambda run, tmp, videos: train_args("--config", "tiny", "--model_dir", tmp / "empty_run",
                                         "--mode", "eval"),
     "found no checkpoint"),
    ("model_dir_is_a_file",
     lambda run, tmp, videos: train_args("--config", "tiny",
                                         "--model_dir", run / "config.yaml"),
     "is a file, not a folder"),
    ("num_classes_disagrees_with_the_folder",
     lambda run, tmp, videos: train_args(
         "--config", "tiny", "--model_dir", tmp / "new_run",
         sets=["data.source=folder", f"data.path={videos}", "data.num_classes=3"]),
     "data.num_classes is 3 but the folder source"),
    ("csv_of_missing_files",
     lambda run, tmp, videos: train_args(
         "--config", "tiny", "--model_dir", tmp / "new_run",
         sets=["data.source=csv", f"data.path={_csv_of_missing_files(tmp)}",
               "data.num_classes=2"]),
     "None of the"),
    ("init_checkpoint_not_a_checkpoint",
     lambda run, tmp, videos: train_args("--config", "tiny", "--model_dir", tmp / "new_run",
                                         sets=[f"train.init_checkpoint={_random_index(tmp)}"]),
     "is not readable"),
    ("init_checkpoint_missing",
     lambda run, tmp, videos: train_args("--config", "tiny", "--model_dir", tmp / "new_run",
                                         sets=[f"train.init_checkpoint={tmp / 'no' / 'ckpt'}"]),
     "does not exist"),
    ("saved_model_overwrite_of_a_run_folder",
     lambda run, tmp, videos: [SAVED_MODEL, "--checkpoint", run, "--output", run, "--overwrite"],
     "is not a SavedModel"),
    ("saved_model_missing_checkpoint",
     lambda run, tmp, videos: [SAVED_MODEL, "--checkpoint", tmp / "nope", "--output",
                               tmp / "sm"],
     "does not exist"),
    ("tflite_zero_calibration_videos",
     lambda run, tmp, videos: [TFLITE, "--checkpoint", run, "--output", tmp / "m.tflite",
                               "--quantize", "int8", "--num_calibration_videos", "0"],
     "--num_calibration_videos must be >= 1"),
    ("tflite_negative_calibration_seed",
     lambda run, tmp, videos: [TFLITE, "--checkpoint", run, "--output", tmp / "m.tflite",
                               "--quantize", "int8", "--calibration_seed", "-1"],
     "--calibration_seed must be >= 0"),
    ("tflite_corrupt_calibration_video",
     lambda run, tmp, videos: [TFLITE, "--checkpoint", run, "--output", tmp / "m.tflite",
                               "--quantize", "int8",
                               "--calibration_videos", _corrupt_video(tmp)],
     "corrupt.mp4"),
    ("tflite_run_folder_without_checkpoint",
     lambda run, tmp, videos: [TFLITE, "--checkpoint", _run_without_checkpoint(run, tmp),
                               "--output", tmp / "m.tflite"],
     "is a folder without a checkpoint"),
    ("tflite_frame_rate_beside_a_config",
     lambda run, tmp, videos: [TFLITE, "--checkpoint", run, "--output", tmp / "m.tflite",
                               "--frame_rate", "5"],
     "--frame_rate is for exports without --config"),
]


@pytest.mark.parametrize("make_args, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(make_args, expected, trained_run, video_folder,
                                                   cache, tmp_path):
    before, videos_before = tree_hash(trained_run), tree_hash(video_folder)
    result = run_cli(make_args(trained_run, tmp_path, video_folder), cache)
    assert_one_line_error(result, expected)
    assert tree_hash(trained_run) == before
    assert tree_hash(video_folder) == videos_before
    for name in ("empty_run", "new_run", "sm", "m.tflite", "m.json", "m.labels.txt"):
        assert not (tmp_path / name).exists(), name
