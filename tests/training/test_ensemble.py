"""Ensemble configs: the `ensemble` section, training both members, evaluation table, export CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from movinet_tf import config as config_lib
from movinet_tf import checkpoints
from movinet_tf.models.flops import count_flops
from movinet_tf.training import ensemble as ensemble_train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env(cache):
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", MOVINET_CACHE=str(cache))


def _run(args, cache):
    result = subprocess.run([sys.executable, *args], cwd=REPO, env=_env(cache),
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _latest_step(directory):
    return int(tf.train.latest_checkpoint(str(directory)).rsplit("-", 1)[1])


def test_member_config_halves_the_frames_over_the_same_span():
    cfg = config_lib.load_config("tiny_ensemble")
    assert (cfg.ensemble.members, cfg.ensemble.frame_stride_multiplier) == (2, 2)
    for index in (0, 1):
        member = config_lib.member_config(cfg, index)
        assert member.data.num_frames == cfg.data.num_frames // 2
        assert member.data.temporal_stride == cfg.data.temporal_stride * 2
        # Same span of source video: (T - 1) * s + 1 for the full clip, one frame less of it.
        full_span = (cfg.data.num_frames - 1) * cfg.data.temporal_stride + 1
        member_span = (member.data.num_frames - 1) * member.data.temporal_stride + 1
        assert full_span - member_span == cfg.data.temporal_stride
        assert member.ensemble.members == 1
        assert member.train.seed == cfg.train.seed + index  # Trained independently.
    mixed = config_lib.load_config("a0_stream_builtin_ensemble",
                                   ["ensemble.model_ids=[a0, t0]"])
    assert [config_lib.member_config(mixed, i).model.model_id for i in (0, 1)] == ["a0", "t0"]


@pytest.mark.parametrize("training", [False, True])
def test_member_pipelines_give_the_even_and_odd_frames_of_the_same_clip(tmp_path, monkeypatch,
                                                                        training):
    """Real builtin videos through the real pipeline: member i == full-rate clip[:, i::2]."""
    from movinet_tf import data as data_lib
    monkeypatch.setenv("MOVINET_CACHE", str(tmp_path / "cache"))
    cfg = config_lib.load_config("tiny_ensemble")
    split = cfg.data.train_split if training else cfg.data.eval_split

    def first_batch(data_cfg):
        video, label = next(iter(data_lib.build_dataset(data_cfg, split, training=training)))
        return video.numpy(), label.numpy()

    full, full_labels = first_batch(cfg.data)
    assert full.shape[1] == 8
    members = []
    for index in (0, 1):
        member_data = config_lib.member_config(cfg, index).data
        assert (member_data.interleave_index, member_data.interleave_count) == (index, 2)
        video, labels = first_batch(member_data)
        assert video.shape[1] == 4
        np.testing.assert_array_equal(labels, full_labels)  # Same videos, same order.
        # Same source frames, same crop: the pixels are equal exactly (tolerance 0).
        np.testing.assert_array_equal(video, full[:, index::2])
        members.append(video)
    assert np.abs(members[0] - members[1]).max() > 0.05   # Even and odd frames do differ.


def test_interleave_settings_are_checked():
    with pytest.raises(ValueError, match="interleave_count"):
        config_lib.load_config("tiny", ["data.interleave_count=2", "data.interleave_index=2"])
    with pytest.raises(ValueError, match="multiple of data.interleave_count"):
        config_lib.load_config("tiny", ["data.interleave_count=3"])
    with pytest.raises(ValueError, match="leave it 1"):
        config_lib.load_config("tiny_ensemble", ["data.interleave_count=2"])


@pytest.mark.parametrize("override,message", [
    ("ensemble.membres=2", "membres"),
    ("ensemble.frame_stride_multiplier=3", "must equal ensemble.members"),
    ("data.num_frames=7", "multiple of ensemble.frame_stride_multiplier"),
    ("ensemble.model_ids=[a0]", "lists 1 models for 2 members"),
    ("ensemble.model_ids=[a0, a9]", "unknown model ids"),
])
def test_bad_ensemble_settings_are_named(override, message):
    with pytest.raises(ValueError, match=message):
        config_lib.load_config("tiny_ensemble", [override])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny ensemble trained by the CLI, plus a full-rate tiny baseline on the same data."""
    root = tmp_path_factory.mktemp("ensemble_run")
    cache = root / "cache"
    baseline = root / "baseline"
    _run(["-m", "movinet_tf.train", "--config", "tiny", "--model_dir", str(baseline),
          "--mode", "train"], cache)
    model_dir = root / "ensemble"
    result = _run(["-m", "movinet_tf.train", "--config", "tiny_ensemble", "--model_dir",
                   str(model_dir), "--set", f"ensemble.baseline_model_dir={baseline}"], cache)
    return root, cache, model_dir, result.stdout


def test_cli_trains_each_member_into_its_own_directory_and_prints_the_table(trained):
    _, _, model_dir, out = trained
    for index in (0, 1):
        assert _latest_step(model_dir / f"member{index}") == 4
        saved = config_lib.load_config(str(model_dir / f"member{index}" / "config.yaml"))
        assert (saved.data.num_frames, saved.data.temporal_stride) == (4, 4)
    for line in ("single model, full rate", "member 0 alone (frames 0, 2, ...)",
                 "member 1 alone (frames 1, 3, ...)", "ensemble of 2 (mean logits)"):
        assert line in out, out[-2000:]
    results = json.loads((model_dir / ensemble_train.RESULTS_FILE).read_text())
    rows = {row["name"].split(" (")[0]: row for row in results["rows"]}
    baseline, ensemble = rows["single model, full rate"], rows["ensemble of 2"]
    # The ensemble costs what the full-rate single model costs (within 2%: the frame count
    # differs by nothing, the per-clip overhead by little).
    assert ensemble["gmacs_per_video"] == pytest.approx(baseline["gmacs_per_video"], rel=0.02)
    # Against an independent count: each member built afresh from its own config (not the
    # ensemble's loaded models) and counted on its 4 of the 8 frames.
    cfg = config_lib.load_config(str(model_dir / "config.yaml"))
    member_gmacs = []
    for index in (0, 1):
        member_cfg = config_lib.member_config(cfg, index)
        model = checkpoints.model_from_config(member_cfg)
        member_gmacs.append(count_flops(model, [1, member_cfg.data.num_frames, 32, 32, 3]) / 1e9)
        assert rows[f"member {index} alone"]["gmacs_per_video"] == pytest.approx(member_gmacs[-1])
    assert ensemble["gmacs_per_video"] == pytest.approx(sum(member_gmacs))
    assert all(row["videos"] == 10 for row in results["rows"])


def test_ensemble_scores_are_the_averaged_member_logits(trained):
    root, cache, model_dir, _ = trained
    os.environ["MOVINET_CACHE"] = str(cache)
    try:
        cfg = config_lib.load_config(str(model_dir / "config.yaml"))
        ensemble = checkpoints.load_ensemble(cfg, str(model_dir))
        video = tf.random.stateless_uniform([2, 8, 32, 32, 3], seed=[1, 2])
        members = [m(video[:, i::2], training=False).numpy() for i, m in enumerate(ensemble.members)]
        np.testing.assert_allclose(ensemble(video).numpy(), np.mean(members, axis=0), atol=1e-6)
    finally:
        os.environ.pop("MOVINET_CACHE", None)


def test_one_member_resumes_alone_and_the_export_cli_takes_the_ensemble(trained):
    root, cache, model_dir, _ = trained
    _run(["-m", "movinet_tf.train", "--config", str(model_dir / "config.yaml"), "--model_dir",
          str(model_dir), "--member", "1", "--set", "train.steps=6"], cache)
    assert _latest_step(model_dir / "member1") == 6   # Resumed from step 4, went on to 6.
    assert _latest_step(model_dir / "member0") == 4   # Untouched.
    output = root / "export" / "ensemble.tflite"
    result = _run([os.path.join("export", "export_tflite.py"), "--checkpoint", str(model_dir),
                   "--output", str(output)], cache)
    manifest = json.loads(output.with_suffix(".json").read_text())
    names = [state["name"] for state in manifest["states"]]
    assert "ensemble_frame_count" in names and "member1_logits" in names
    assert "Wrote" in result.stdout


def test_unknown_member_is_a_usage_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "movinet_tf.train", "--config", "tiny_ensemble", "--model_dir",
         str(tmp_path / "run"), "--member", "2"], cwd=REPO, env=_env(tmp_path / "cache"),
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "--member 2 does not exist" in result.stderr
