"""The run contract through the real CLIs: lock, divergence, model_dir alone, safe exports."""
import json
import os
import stat

from movinet_tf import checkpoints
from tests.cli.conftest import assert_one_line_error, run_cli, train_args, tree_hash


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_second_training_on_a_locked_run_is_refused(run_copy, cache):
    before = tree_hash(run_copy)
    with checkpoints.lock_run(run_copy):  # This process is "the other training".
        result = run_cli(train_args("--model_dir", run_copy, "--mode", "train",
                                    sets=["train.steps=3"]), cache)
    assert_one_line_error(result, "Another process is training in")
    assert tree_hash(run_copy) == before


def test_diverged_training_stops_saves_nothing_and_keeps_the_good_checkpoints(run_copy, cache):
    before = tree_hash(run_copy)
    result = run_cli(train_args("--model_dir", run_copy, "--mode", "train_and_eval", sets=[
        "train.steps=6", "train.checkpoint_every=100", "train.optimizer=sgd",
        "train.base_learning_rate=1e30", "train.clipnorm=0"]), cache)
    assert_one_line_error(result, "Training diverged at step")
    assert "the latest good checkpoint" in result.stderr and "ckpt-2" in result.stderr
    # Every file is as it was: no checkpoint, config or eval result of the diverged run.
    # Only the TensorBoard log of the steps before the divergence was added (log_every=1).
    after = tree_hash(run_copy)
    assert {k: after.get(k) for k in before} == before
    assert all(k.startswith("train/events.") for k in set(after) - set(before))


def test_eval_and_export_need_only_the_model_dir(run_copy, cache, tmp_path):
    config_before = (run_copy / "config.yaml").read_bytes()
    result = run_cli(train_args("--model_dir", run_copy, "--mode", "eval"), cache)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stream" in result.stdout and "top1" in result.stdout
    # It evaluated the folder data of the saved config (2 validation videos), and wrote
    # its results with the umask's mode, but not config.yaml.
    results = json.loads((run_copy / "eval_step2.json").read_text())
    assert results["step"] == 2 and results["clip"]["videos"] == 2
    assert (run_copy / "config.yaml").read_bytes() == config_before
    umask = os.umask(0)
    os.umask(umask)
    assert _mode(run_copy / "eval_step2.json") == 0o666 & ~umask

    # int8 without calibration videos: it works and says the figures are synthetic.
    output = tmp_path / "out" / "m.tflite"
    result = run_cli(["export/export_tflite.py", "--checkpoint", run_copy, "--output", output,
                      "--quantize", "int8", "--num_calibration_videos", "2",
                      "--num_eval_videos", "1", "--max_frames", "4"], cache)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "calibrated on synthetic builtin clips" in result.stderr
    assert "held-out synthetic clips" in result.stdout
    manifest = json.loads(output.with_suffix(".json").read_text())
    assert json.dumps(manifest).count("32") and manifest.get("labels", ["a", "b"]) is not None
    for path in (output, output.with_suffix(".json"), tmp_path / "out" / "m.labels.txt"):
        assert _mode(path) == 0o666 & ~umask, path
    assert (tmp_path / "out" / "m.labels.txt").read_text().split() == ["a", "b"]
    assert (run_copy / "config.yaml").read_bytes() == config_before


def test_saved_model_overwrite_replaces_a_saved_model_and_follows_the_umask(trained_run, cache,
                                                                            tmp_path):
    target = tmp_path / "sm"
    (target / "variables").mkdir(parents=True)
    (target / "saved_model.pb").write_bytes(b"an older export")
    result = run_cli(["export/export_saved_model.py", "--checkpoint", trained_run,
                      "--output", target, "--overwrite"], cache)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (target / "saved_model.pb").read_bytes() != b"an older export"
    assert (target / "variables" / "variables.index").is_file()
    # No renaming warnings or TF log lines: the output is the one result line.
    assert len(result.stderr) < 2000, result.stderr[-3000:]
    umask = os.umask(0)
    os.umask(umask)
    assert _mode(target) == 0o777 & ~umask
    assert _mode(target / "saved_model.pb") == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]  # no temporary left beside it
