"""Tests for `movinet_tf.checkpoints`: the run contract shared by training and export."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from movinet_tf import checkpoints
from movinet_tf import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny(*overrides):
    return config_lib.load_config("tiny", list(overrides))


def _randomized(model, seed):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(size=weight.shape).astype(weight.dtype))
    return model


def test_restore_round_trip_and_one_names_and_shapes_error(tmp_path):
    cfg = _tiny()
    source = _randomized(checkpoints.model_from_config(cfg), seed=3)
    prefix = tf.train.Checkpoint(model=checkpoints.weights_by_name(source)).save(
        str(tmp_path / "run" / "ckpt"))
    target = checkpoints.model_from_config(cfg)
    assert checkpoints.restore(target, prefix) == prefix
    for ours, theirs in zip(target.weights, source.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())

    other = checkpoints.model_from_config(_tiny("model.conv_type=3d"))
    with pytest.raises(ValueError, match=r"does not fit .*shape mismatch.*checkpoint \[1, 3, 3"):
        checkpoints.restore(other, prefix)
    fewer_classes = checkpoints.model_from_config(_tiny("data.num_classes=4"))
    with pytest.raises(ValueError, match=r"shape mismatch.*classifier"):
        checkpoints.restore(fewer_classes, prefix)
    # Only the backbone: the classifier's shapes do not matter then.
    checkpoints.restore(fewer_classes, prefix, strict=False, only="backbone/")
    restored, original = (checkpoints.weights_by_name(m) for m in (fewer_classes, source))
    backbone = [k for k in original if k.startswith("backbone/")]
    assert backbone and all(np.array_equal(restored[k].numpy(), original[k].numpy())
                            for k in backbone)


def test_resolve_checkpoint_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoints.resolve_checkpoint(str(tmp_path / "no" / "ckpt-1"))
    with pytest.raises(FileNotFoundError, match="folder without a checkpoint"):
        checkpoints.resolve_checkpoint(str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"not a checkpoint \(no .*ckpt-9.index"):
        checkpoints.resolve_checkpoint(str(tmp_path / "ckpt-9"))
    (tmp_path / "bad.index").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="is not readable"):
        checkpoints.checkpoint_weight_shapes(str(tmp_path / "bad"))


def test_config_changes_allow_schedule_keys_and_refuse_model_and_data_keys():
    saved = _tiny()
    assert checkpoints.config_changes(saved, _tiny("train.steps=60", "eval.modes=[clip]",
                                                   "data.eval_batch_size=2")) == []
    changes = checkpoints.config_changes(saved, _tiny("model.conv_type=3d",
                                                      "data.image_size=24",
                                                      "data.min_image_size=24"))
    assert [key for key, _, _ in changes] == ["model.conv_type", "data.image_size",
                                              "data.min_image_size"]
    with pytest.raises(ValueError, match=r"model.conv_type \('2plus1d' -> '3d'\).*"
                                         r"--allow_config_change"):
        checkpoints.check_config_change(saved, _tiny("model.conv_type=3d"), "runs/x")
    checkpoints.check_config_change(saved, _tiny("model.conv_type=3d"), "runs/x", allow=True)


def test_saved_config_applies_overrides_and_checks_them(tmp_path):
    config_lib.save_config(_tiny(), str(tmp_path / checkpoints.CONFIG_FILE))
    assert checkpoints.saved_config(tmp_path, ["train.steps=9"]).train.steps == 9
    with pytest.raises(ValueError, match="data.num_frames"):
        checkpoints.saved_config(tmp_path, ["data.num_frames=4"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.yaml"):
        checkpoints.saved_config(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoints.saved_config(tmp_path / "missing")


def test_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path):
    with checkpoints.lock_run(tmp_path):
        with pytest.raises(checkpoints.RunLocked, match="Another process is training"):
            with checkpoints.lock_run(tmp_path):
                pass
    with checkpoints.lock_run(tmp_path):  # Released by the first holder.
        pass
    assert os.listdir(tmp_path) == []  # The lock leaves no file behind.


def test_lock_of_a_killed_process_does_not_block(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from movinet_tf import checkpoints\n"
         "lock = checkpoints.lock_run(sys.argv[1]).__enter__()\n"
         "print('locked', flush=True)\n"
         "time.sleep(600)\n", str(tmp_path)],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(checkpoints.RunLocked):
            checkpoints.lock_run(tmp_path).__enter__()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        with checkpoints.lock_run(tmp_path):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.stdout.close()
