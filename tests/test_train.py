"""Tests for `python -m movinet_tf.train` on the tiny config (8 frames of 32x32, builtin data).

The CLI runs in subprocesses, as a user runs it: a training run is SIGKILLed mid-run
and restarted, the restarted run is then fine-tuned with a frozen backbone, and the
same fine-tuning runs again on 2 mirrored CPU devices and on 2 local workers.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from movinet_tf import config
from movinet_tf import checkpoints
from movinet_tf.training import optimizer as optimizer_lib
from movinet_tf.training import state as state_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _command(model_dir, *sets, mode="train"):
    args = [sys.executable, "-m", "movinet_tf.train", "--config", "tiny",
            "--model_dir", str(model_dir), "--mode", mode]
    for item in sets:
        args += ["--set", item]
    return args


def _env(cache, **extra):
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", MOVINET_CACHE=str(cache), **extra)


def _run(model_dir, cache, *sets, mode="train", env=None):
    result = subprocess.run(_command(model_dir, *sets, mode=mode), cwd=REPO,
                            env=env or _env(cache), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _read(path):
    """All variables of a checkpoint: {key: array}."""
    reader = tf.train.load_checkpoint(str(path))
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(str(path))}


def _checkpoint_paths(model_dir):
    state = tf.train.get_checkpoint_state(str(model_dir))
    return list(state.all_model_checkpoint_paths) if state else []


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory, cache):
    """A run with a checkpoint every step, SIGKILLed once it has written 3 or more."""
    model_dir = tmp_path_factory.mktemp("killed")
    process = subprocess.Popen(
        _command(model_dir, "train.steps=1000", "train.checkpoint_every=1", "train.log_every=1"),
        cwd=REPO, env=_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and process.poll() is None:
            paths = _checkpoint_paths(model_dir)
            if paths and int(paths[-1].rsplit("-", 1)[1]) >= 3:
                break
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stderr.close()
    latest = tf.train.latest_checkpoint(str(model_dir))
    return {"model_dir": model_dir, "latest": latest, "step": int(latest.rsplit("-", 1)[1])}


@pytest.fixture(scope="module")
def resumed_run(killed_run, cache):
    """The killed run restarted (with a near target) until it finishes and evaluates."""
    target = killed_run["step"] + 2
    result = _run(killed_run["model_dir"], cache, "train.steps=1000", "train.checkpoint_every=1",
                  "train.log_every=1", f"train.steps={target}", mode="train_and_eval")
    return {**killed_run, "target": target, "stderr": result.stderr, "stdout": result.stdout}


def test_kill_leaves_every_checkpoint_loadable(killed_run):
    paths = _checkpoint_paths(killed_run["model_dir"])
    assert 1 <= len(paths) <= 3  # keep_checkpoints in tiny.yaml
    for path in paths:
        values = _read(path)
        assert int(values["step/.ATTRIBUTES/VARIABLE_VALUE"]) == int(path.rsplit("-", 1)[1])


def test_restore_gives_back_weights_slots_and_position_exactly(killed_run, tmp_path):
    cfg = config.load_config(str(killed_run["model_dir"] / "config.yaml"))
    optimizer_lib.make_optimizer(cfg)  # an earlier optimizer in the process must not shift any name
    state = state_lib.make_training_state(cfg, tf.distribute.get_strategy())
    fresh = {v.path: v.numpy() for v in state.model.weights}
    state_lib.restore_checkpoint(state, killed_run["latest"])
    assert int(state.step) == killed_run["step"]
    # Saving the restored state again must reproduce the checkpoint, variable by variable.
    state.checkpoint.write(str(tmp_path / "again"))
    original, again = _read(killed_run["latest"]), _read(tmp_path / "again")
    original.pop("save_counter/.ATTRIBUTES/VARIABLE_VALUE", None)
    again.pop("save_counter/.ATTRIBUTES/VARIABLE_VALUE", None)
    assert sorted(original) == sorted(again)
    for key in original:
        if key.endswith("VARIABLE_VALUE"):
            np.testing.assert_array_equal(original[key], again[key], err_msg=key)
    slots = [k for k in original if k.startswith("optimizer/") and original[k].size > 1]
    assert slots and any(np.abs(original[k]).max() > 0 for k in slots)  # RMSprop slots are live
    restored = {v.path: v.numpy() for v in state.model.weights}
    assert any(not np.array_equal(fresh[p], restored[p]) for p in fresh)


def test_restart_continues_from_the_checkpoint(resumed_run):
    assert f"Resumed from {resumed_run['latest']} at step {resumed_run['step']}" in resumed_run["stderr"]
    latest = tf.train.latest_checkpoint(str(resumed_run["model_dir"]))
    assert latest.endswith(f"ckpt-{resumed_run['target']}")
    values = _read(latest)
    assert int(values["step/.ATTRIBUTES/VARIABLE_VALUE"]) == resumed_run["target"]
    for path in _checkpoint_paths(resumed_run["model_dir"]):
        _read(path)  # none corrupted


def test_run_writes_config_events_and_eval_results(resumed_run):
    model_dir = resumed_run["model_dir"]
    saved = config.load_config(str(model_dir / "config.yaml"))
    assert saved == config.load_config("tiny", ["train.steps=1000", "train.checkpoint_every=1",
                                                "train.log_every=1",
                                                f"train.steps={resumed_run['target']}"])
    tags = set()
    for name in os.listdir(model_dir / "train"):
        for event in tf.compat.v1.train.summary_iterator(str(model_dir / "train" / name)):
            for value in event.summary.value:
                tags.add(value.tag)
                if value.tag == "train/loss":
                    assert np.isfinite(tf.make_ndarray(value.tensor))
    assert {"train/loss", "train/top1", "train/top5", "train/learning_rate"} <= tags
    with open(model_dir / f"eval_step{resumed_run['target']}.json") as f:
        results = json.load(f)
    assert results["clip"]["videos"] == 10  # builtin val: 1 video per class
    # A stream model that has seen every frame predicts what the whole-clip pass does.
    assert results["stream"]["top1"] == results["clip"]["top1"]
    assert "streaming accuracy after each second" in resumed_run["stdout"]


@pytest.fixture(scope="module")
def fine_tuned(resumed_run, cache, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("fine_tuned")
    init = tf.train.latest_checkpoint(str(resumed_run["model_dir"]))
    sets = (f"train.init_checkpoint={init}", "train.freeze_backbone=true", "train.steps=2",
            "train.warmup_steps=0")
    _run(model_dir, cache, *sets)
    return {"init": init, "sets": sets, "final": tf.train.latest_checkpoint(str(model_dir))}


def _split_backbone_and_head(values):
    # Checkpoint keys escape the '/' of weight names as '.S'.
    backbone = {k: v for k, v in values.items() if k.startswith("model/backbone.S")}
    head = {k: v for k, v in values.items() if k.startswith("model/classifier_head.S")}
    return backbone, head


def test_fine_tune_with_frozen_backbone_changes_only_the_head(fine_tuned):
    init_backbone, init_head = _split_backbone_and_head(_read(fine_tuned["init"]))
    new_backbone, new_head = _split_backbone_and_head(_read(fine_tuned["final"]))
    assert any("moving_mean" in k for k in init_backbone)  # BN statistics are frozen too
    assert len(init_backbone) > 60 and len(init_head) == 4
    assert sorted(init_backbone) == sorted(new_backbone)
    for key in init_backbone:
        np.testing.assert_array_equal(init_backbone[key], new_backbone[key], err_msg=key)
    assert any(not np.allclose(init_head[k], new_head[k]) for k in init_head)


def test_init_checkpoint_errors_name_the_path(tmp_path):
    cfg = config.load_config("tiny")
    model = state_lib.build_model(cfg)
    with pytest.raises(FileNotFoundError, match="no_such_ckpt.*is not a checkpoint"):
        state_lib.load_init_checkpoint(model, str(tmp_path / "no_such_ckpt"), "all")
    with pytest.raises(FileNotFoundError, match="without a checkpoint"):
        state_lib.load_init_checkpoint(model, str(tmp_path), "backbone")


@pytest.mark.slow
def test_mirrored_on_two_cpu_devices_matches_one_device(fine_tuned, cache, tmp_path):
    # Same init, same 4 clips per step split 2 + 2; BatchNorm is frozen with the backbone,
    # so the summed, clipped gradient and hence the head must match the 1-device run.
    result = _run(tmp_path, cache, *fine_tuned["sets"], "runtime.strategy=mirrored",
                  "runtime.cpu_logical_devices=2")
    assert "with 2 replica(s)" in result.stderr
    _, single_head = _split_backbone_and_head(_read(fine_tuned["final"]))
    _, mirrored_head = _split_backbone_and_head(_read(tf.train.latest_checkpoint(str(tmp_path))))
    for key in single_head:
        np.testing.assert_allclose(mirrored_head[key], single_head[key], atol=1e-5, err_msg=key)


@pytest.mark.slow
def test_subclip_training_runs_and_updates_the_model(fine_tuned, cache, tmp_path):
    # 8 frames in 2 sub-clips of 4, states carried; from the fine-tuned weights, 2 steps.
    result = _run(tmp_path, cache, f"train.init_checkpoint={fine_tuned['final']}",
                  "train.subclips=2", "train.steps=2", "train.warmup_steps=0", mode="train")
    assert "Traceback" not in result.stderr
    before, after = _read(fine_tuned["final"]), _read(tf.train.latest_checkpoint(str(tmp_path)))
    changed = [k for k in before if k.startswith("model/") and "moving" not in k
               and not np.array_equal(before[k], after[k])]
    assert changed and all(np.all(np.isfinite(after[k])) for k in changed)
    # Sub-clip training freezes BatchNorm statistics.
    moving = [k for k in before if "moving_mean" in k]
    assert moving and all(np.array_equal(before[k], after[k]) for k in moving)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_two_local_workers_end_with_the_same_weights(cache, tmp_path):
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    sets = ("runtime.strategy=multi_worker_mirrored", "runtime.keep_worker_checkpoints=true",
            "train.steps=3", "train.checkpoint_every=3")
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            _command(tmp_path, *sets), cwd=REPO, env=_env(cache, TF_CONFIG=tf_config),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    errors = [p.communicate(timeout=300)[1] for p in processes]
    for process, error in zip(processes, errors):
        assert process.returncode == 0, error[-3000:]
    assert "with 2 replica(s)" in errors[0]
    chief = _read(tmp_path / "ckpt-3")
    worker = _read(tmp_path / "worker1" / "ckpt-3")
    assert sorted(chief) == sorted(worker)
    assert int(chief["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 3
    # Trainable weights and optimizer slots follow the all-reduced gradients, so they agree.
    # BatchNorm moving statistics are per replica (plain, not synchronized BN: each worker
    # averages its own batches), so those are only checked to be sane; the chief's are kept.
    compared = 0
    for key in chief:
        if not key.endswith("VARIABLE_VALUE"):
            continue
        if "moving_mean" in key or "moving_variance" in key or "save_counter" in key:
            assert np.all(np.isfinite(worker[key])), key
            continue
        np.testing.assert_allclose(chief[key], worker[key], rtol=1e-6, atol=1e-7, err_msg=key)
        compared += 1
    assert compared > 100


def test_loss_is_reported_as_cross_entropy_plus_regularization(cache, tmp_path):
    # One step with a negligible learning rate (the config refuses 0): the checkpoint holds
    # the weights the loss saw, to far better than the rtol below.
    _run(tmp_path, cache, "train.steps=1", "train.log_every=1", "train.warmup_steps=0",
         "train.base_learning_rate=1e-12", "train.l2_weight_decay=0.01")
    logged = {}
    for name in os.listdir(tmp_path / "train"):
        for event in tf.compat.v1.train.summary_iterator(str(tmp_path / "train" / name)):
            for value in event.summary.value:
                logged[value.tag] = float(tf.make_ndarray(value.tensor))
    cfg = config.load_config("tiny", ["train.l2_weight_decay=0.01"])
    model = state_lib.build_model(cfg)
    model(tf.zeros((1, cfg.data.num_frames, cfg.data.image_size, cfg.data.image_size, 3)))
    tf.train.Checkpoint(model=checkpoints.weights_by_name(model)).read(
        tf.train.latest_checkpoint(str(tmp_path))).expect_partial()
    # The L2 term, recomputed from the saved weights.
    expected_l2 = float(tf.add_n(model.losses))
    assert expected_l2 > 0.01
    np.testing.assert_allclose(logged["train/regularization"], expected_l2, rtol=1e-5)
    # Random weights with a small classifier: cross-entropy near ln(10), label smoothing or not.
    assert abs(logged["train/cross_entropy"] - np.log(10)) < 0.15
    np.testing.assert_allclose(logged["train/loss"],
                               logged["train/cross_entropy"] + logged["train/regularization"],
                               rtol=1e-6)
