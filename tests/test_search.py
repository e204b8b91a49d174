"""`python -m movinet_tf.search`: end to end on the builtin set, outputs, resume after a kill."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import movinet_tf
from movinet_tf import config as experiment_config
from movinet_tf import data as data_lib
from movinet_tf.models import specs as specs_lib
from movinet_tf.nas import config as nas_config
from movinet_tf.nas import tunas

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_CONFIG = os.path.join(REPO, "configs", "search", "test_tiny.yaml")


def _overrides(tmp_root):
    return [f"data.path={os.path.join(str(tmp_root), 'builtin')}"]


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    # Probes and rewards on 2 batches with recalibrated BatchNorm: the slowest options, once;
    # the first step trains the widest architecture.
    cfg = nas_config.load_config(TEST_CONFIG, _overrides(root) + [
        "search.probe_architectures=1", "search.reward_batches=2",
        "search.reward_bn=recalibrated", "search.weight_warmup_steps=2",
        "search.largest_steps=1"])
    records = []
    summary = tunas.run_search(cfg, str(root / "out"), report=records.append)
    return cfg, root / "out", summary, records


def test_search_reports_progress_and_writes_outputs(finished_search):
    cfg, out, summary, records = finished_search
    progress = [r for r in records if r["event"] == "progress"]
    assert [r["step"] for r in progress] == list(range(1, cfg.search.steps + 1))
    after_warmup = [r for r in progress if r["step"] > cfg.search.warmup_steps]
    assert after_warmup and all({"entropy", "cost", "reward"} <= set(r) for r in after_warmup)
    assert all(np.isfinite(r["loss"]) for r in progress)
    # The shared weights' accuracy on uniformly sampled architectures, warm-up included.
    assert all(0.0 <= r["probe_top1"] <= 1.0 for r in progress)
    # Reward and probe clips are whole validation batches (5 clips each).
    assert all(r["quality"] * 2 * 5 == pytest.approx(round(r["quality"] * 10))
               for r in after_warmup)
    final = summary["supernet_val_top1"] * 5
    assert final == pytest.approx(round(final))
    for name in (tunas.SPEC_FILE, tunas.TRAIN_CONFIG_FILE, tunas.SUMMARY_FILE, "config.yaml"):
        assert (out / name).is_file(), name
    with open(out / tunas.SUMMARY_FILE) as f:
        written = json.load(f)
    assert written["block_specs"] == summary["block_specs"]
    space = nas_config.build_space(cfg.space)
    assert space.contains(summary["block_specs"])
    # The reported cost is the found architecture's multiply-adds per streamed frame, in
    # millions, as counted on the built model (the search uses a closed-form `spec_macs`).
    model = tunas.build_candidate(cfg, summary["block_specs"])
    size = cfg.data.image_size
    counted = movinet_tf.count_flops(model, [1, 1, size, size, 3]) / 1e6
    assert summary["cost"] == pytest.approx(counted, rel=1e-9)


def test_found_spec_loads_for_build_model_and_the_trainer(finished_search):
    cfg, out, summary, _ = finished_search
    text = tunas.load_spec_yaml(str(out / tunas.SPEC_FILE))
    assert text == summary["block_specs"]
    train_cfg = experiment_config.load_config(str(out / tunas.TRAIN_CONFIG_FILE))
    assert specs_lib.parse_spec(train_cfg.model.block_specs) == specs_lib.parse_spec(text)
    assert train_cfg.data.image_size == cfg.data.image_size
    # The fragment itself is a valid trainer config (everything else at defaults).
    fragment = experiment_config.load_config(str(out / tunas.SPEC_FILE))
    assert specs_lib.parse_spec(fragment.model.block_specs) == specs_lib.parse_spec(text)


def test_found_spec_trains(finished_search):
    import keras
    cfg, out, _, _ = finished_search
    model = tunas.build_candidate(cfg, tunas.load_spec_yaml(str(out / tunas.SPEC_FILE)))
    video, labels = next(iter(data_lib.build_dataset(cfg.data, "train", training=True)))
    optimizer = keras.optimizers.Adam(0.01)
    before = [w.numpy().copy() for w in model.trainable_weights]
    losses = []
    for _ in range(2):
        with tf.GradientTape() as tape:
            logits = model(video, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply(grads, model.trainable_weights)
        losses.append(float(loss))
    assert all(np.isfinite(losses))
    changed = [np.abs(w.numpy() - b).max() > 0 for w, b in zip(model.trainable_weights, before)]
    assert sum(changed) > 0.9 * len(changed)


def test_resume_continues_from_the_checkpoint(tmp_path):
    cfg = nas_config.load_config(TEST_CONFIG, _overrides(tmp_path))
    out = str(tmp_path / "out")
    assert tunas.run_search(cfg, out, stop_after=3) is None  # checkpoint at step 2, then "killed"
    assert not os.path.exists(os.path.join(out, tunas.SUMMARY_FILE))
    records = []
    summary = tunas.run_search(cfg, out, report=records.append)
    assert records[0]["event"] == "resumed" and records[0]["step"] == 2
    steps = [r["step"] for r in records if r["event"] == "progress"]
    assert steps == list(range(3, cfg.search.steps + 1))
    assert summary is not None and summary["steps"] == cfg.search.steps


@pytest.mark.slow
def test_cli_resumes_after_a_kill(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "movinet_tf.search", "--config", TEST_CONFIG,
               "--output_dir", str(out), "--set", f"data.path={tmp_path / 'builtin'}",
               "--set", "search.steps=12"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    index = out / "checkpoints" / "checkpoint"
    deadline = time.time() + 240
    while not index.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert index.exists(), "no checkpoint was written before the kill"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / tunas.SUMMARY_FILE).exists()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resumed at step" in result.stdout
    resumed_at = int(result.stdout.split("resumed at step")[1].split()[0])
    assert 2 <= resumed_at < 12
    assert "Searched architecture" in result.stdout
    with open(out / tunas.SUMMARY_FILE) as f:
        assert json.load(f)["steps"] == 12


def test_cli_rejects_an_unknown_key_naming_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match=r"search\.stepz.*Did you mean 'steps'.*warmup_steps"):
        nas_config.load_config(TEST_CONFIG, ["search.stepz=3"])
    with pytest.raises(TypeError, match="search.steps"):
        nas_config.load_config(TEST_CONFIG, ["search.steps=many"])
    with pytest.raises(ValueError, match="beta"):
        nas_config.load_config(TEST_CONFIG, ["search.beta=0.5"])
    with pytest.raises(ValueError, match="space.preset"):
        nas_config.load_config(TEST_CONFIG, ["space.preset=huge"])
    result = subprocess.run([sys.executable, "-m", "movinet_tf.search", "--config", TEST_CONFIG,
                             "--set", "model.conv_typ=3d"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "model.conv_typ" in result.stderr and "conv_type" in result.stderr


def test_weight_learning_rate_warms_up_then_decays():
    cfg = nas_config.load_config(TEST_CONFIG, ["search.steps=20", "search.weight_warmup_steps=5",
                                               "search.weight_learning_rate=0.01"])
    schedule = tunas.weight_schedule(cfg.search)
    rates = [float(schedule(step)) for step in range(21)]
    assert rates[0] == 0.0
    assert rates[1] == pytest.approx(0.002) and rates[5] == pytest.approx(0.01)
    # Cosine over the remaining 15 steps: half way at step 5 + 7.5.
    assert float(schedule(12.5)) == pytest.approx(0.005, rel=1e-5)
    assert rates[20] == pytest.approx(0.0, abs=1e-9)
    plain = tunas.weight_schedule(nas_config.load_config(TEST_CONFIG, ["search.steps=20"]).search)
    assert float(plain(0)) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="weight_warmup_steps"):
        nas_config.load_config(TEST_CONFIG, ["search.steps=20", "search.weight_warmup_steps=20"])
    with pytest.raises(ValueError, match="reward_bn"):
        nas_config.load_config(TEST_CONFIG, ["search.reward_bn=moving"])
    with pytest.raises(ValueError, match="largest_steps"):
        nas_config.load_config(TEST_CONFIG, ["search.largest_steps=3"])  # > warmup_steps (2)


def test_validation_batches_mix_the_classes_and_cover_the_split(tmp_path):
    cfg = nas_config.load_config(TEST_CONFIG, _overrides(tmp_path))
    ordered = np.concatenate([labels.numpy() for _, labels in data_lib.build_dataset(
        cfg.data, cfg.data.eval_split, training=False)])
    assert np.all(np.diff(ordered) >= 0)  # The evaluation pipeline keeps the class order.
    first, second = (np.concatenate([labels.numpy() for _, labels in one_pass])
                     for one_pass in [tunas.validation_batches(cfg.data, 0)] * 2)
    # Every clip once per pass, in a new order each pass, and not sorted.
    np.testing.assert_array_equal(np.sort(first), ordered)
    np.testing.assert_array_equal(np.sort(second), ordered)
    assert not np.array_equal(first, ordered) and not np.array_equal(first, second)
    batches = [labels.numpy() for _, labels in tunas.validation_batches(cfg.data, 0)]
    assert max(len(set(b)) for b in batches) > 2


def test_checkpoint_restores_every_supernet_weight(tmp_path):
    # Randomised weights, BatchNorm statistics included, saved the way the search saves them.
    cfg = nas_config.load_config(TEST_CONFIG)
    supernet = tunas.build_supernet(cfg)
    rng = np.random.default_rng(0)
    for weight in supernet.weights:
        weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32"))
    saved = {weight.path: weight.numpy() for weight in supernet.weights}
    assert any(not weight.trainable for weight in supernet.weights)  # the moving statistics
    tunas.search_checkpoint(supernet, step=tf.Variable(3, dtype=tf.int64)).save(
        str(tmp_path / tunas.CHECKPOINT_DIR / "ckpt"))
    restored = tunas.restore_supernet(cfg, str(tmp_path))
    assert len(restored.weights) == len(saved)
    for weight in restored.weights:
        np.testing.assert_array_equal(weight.numpy(), saved[weight.path])
    # A checkpoint without them (the layout before the fix) is an error, not random weights.
    tf.train.Checkpoint(step=tf.Variable(3, dtype=tf.int64)).save(
        str(tmp_path / "old" / tunas.CHECKPOINT_DIR / "ckpt"))
    with pytest.raises(ValueError, match="supernet weight"):
        tunas.restore_supernet(cfg, str(tmp_path / "old"))
    with pytest.raises(FileNotFoundError):
        tunas.restore_supernet(cfg, str(tmp_path / "none"))
