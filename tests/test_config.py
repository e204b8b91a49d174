"""Tests for movinet_tf.config: strict loading, --set overrides, shipped YAMLs, LR scaling."""
import os
import subprocess
import sys

import pytest

from movinet_tf import config
from movinet_tf import strict_yaml
from movinet_tf.training import state as state_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Keras count_params (BN moving statistics included), 600 classes: the numbers of the
# official implementation, tf-models-official official/projects/movinet (base = 3d convs +
# 3d SE, the counts its movinet_model_test.py asserts; stream = (2+1)d, 2plus3d SE,
# positional encoding for a3-a5, counted by building the official model under tf_keras).
# tests/models/test_movinet.py holds the same figures for the bare network.
PUBLISHED_PARAMS = {
    "a0_base": 3_126_071, "a1_base": 4_717_912, "a2_base": 5_280_922, "a3_base": 7_443_289,
    "a4_base": 11_422_727, "a5_base": 18_763_355, "t0_base": 1_740_502,
    "a0_stream": 3_765_983, "a1_stream": 6_481_560, "a2_stream": 7_366_050,
    "a3_stream": 11_043_146, "a4_stream": 18_228_326, "a5_stream": 31_636_734,
    "t0_stream": 2_385_118,
}
FAST_BUILDS = ("a0_base", "a0_stream", "t0_base", "t0_stream")


def test_unknown_key_is_named_with_suggestion_and_valid_keys():
    with pytest.raises(ValueError) as error:
        config.config_from_dict({"train": {"stepz": 5}})
    message = str(error.value)
    assert "'train.stepz'" in message
    assert "Did you mean 'steps'?" in message
    assert "base_learning_rate" in message  # the valid keys are listed


def test_unknown_top_level_and_data_keys():
    with pytest.raises(ValueError, match=r"'trian'.*Did you mean 'train'\?"):
        config.config_from_dict({"trian": {}})
    # The data section is the data pipeline's own DataConfig, checked the same way.
    with pytest.raises(ValueError, match=r"'data.num_frame'.*Did you mean 'num_frames'\?"):
        config.config_from_dict({"data": {"num_frame": 8}})


def test_wrong_types_name_key_and_expected_type():
    with pytest.raises(TypeError, match=r"'train.steps' expects int, got 'ten'"):
        config.config_from_dict({"train": {"steps": "ten"}})
    with pytest.raises(TypeError, match=r"'model.stream' expects bool"):
        config.config_from_dict({"model": {"stream": 1}})
    with pytest.raises(TypeError, match=r"'train.steps' expects int, got True"):
        config.config_from_dict({"train": {"steps": True}})
    with pytest.raises(TypeError, match=r"'eval.modes' expects list of str"):
        config.config_from_dict({"eval": {"modes": "clip"}})
    with pytest.raises(TypeError, match=r"'train' expects a mapping"):
        config.config_from_dict({"train": 3})


def test_choices_and_cross_field_checks():
    with pytest.raises(ValueError, match=r"'train.optimizer' is 'adamm'; expected one of: rmsprop"):
        config.config_from_dict({"train": {"optimizer": "adamm"}})
    with pytest.raises(ValueError, match=r"eval.modes.*'strem'"):
        config.config_from_dict({"eval": {"modes": ["clip", "strem"]}})
    with pytest.raises(ValueError, match="needs a stream"):
        config.config_from_dict({"model": {"stream": False}, "eval": {"modes": ["stream"]}})
    with pytest.raises(ValueError, match="model.model_id"):
        config.config_from_dict({"model": {"model_id": "a9"}})


def test_floats_accept_yaml_exponents_and_ints():
    cfg = config.config_from_dict({"train": {"l2_weight_decay": "3e-5", "base_learning_rate": 2}})
    assert cfg.train.l2_weight_decay == pytest.approx(3e-5)
    assert isinstance(cfg.train.base_learning_rate, float) and cfg.train.base_learning_rate == 2.0


def test_parse_override_yaml_scalars():
    assert strict_yaml.parse_override("train.steps=10") == (["train", "steps"], 10)
    assert strict_yaml.parse_override("model.se_type=null") == (["model", "se_type"], None)
    assert strict_yaml.parse_override("model.stream=false") == (["model", "stream"], False)
    assert strict_yaml.parse_override("eval.modes=[clip, stream]") == (["eval", "modes"], ["clip", "stream"])
    assert strict_yaml.parse_override("data.path=/a/b=c") == (["data", "path"], "/a/b=c")
    with pytest.raises(ValueError, match="key=value"):
        strict_yaml.parse_override("train.steps")
    with pytest.raises(ValueError, match="empty key"):
        strict_yaml.parse_override("train..steps=3")


def test_load_config_with_overrides_goes_through_the_same_checks():
    cfg = config.load_config("tiny", ["train.steps=3", "data.batch_size=2", "eval.modes=[clip]"])
    assert (cfg.train.steps, cfg.data.batch_size, cfg.eval.modes) == (3, 2, ["clip"])
    with pytest.raises(ValueError, match=r"'train.stepz'.*Did you mean 'steps'"):
        config.load_config("tiny", ["train.stepz=3"])
    with pytest.raises(TypeError, match=r"'data.batch_size' expects int"):
        config.load_config("tiny", ["data.batch_size=big"])
    with pytest.raises(TypeError, match="not a section"):
        config.load_config("tiny", ["train.steps.x=1"])


def test_config_names_resolve_and_missing_ones_suggest():
    by_name = config.resolve_config_path("a0_stream")
    assert by_name == config.resolve_config_path("a0_stream.yaml")
    assert by_name.samefile(os.path.join(REPO, "configs", "a0_stream.yaml"))
    with pytest.raises(FileNotFoundError, match=r"Did you mean 'a0_stream.yaml'\?"):
        config.resolve_config_path("a0_strem")


def test_save_and_load_round_trip(tmp_path):
    cfg = config.load_config("a3_stream", ["train.steps=7", "train.warmup_steps=2"])
    path = tmp_path / "run" / "config.yaml"
    config.save_config(cfg, path)
    assert config.load_config(str(path)) == cfg
    assert os.listdir(path.parent) == ["config.yaml"]  # no temp file left behind


def test_every_shipped_config_loads():
    names = config.available_configs()
    expected = {f"{m}_{kind}.yaml" for m in ("a0", "a1", "a2", "a3", "a4", "a5", "t0")
                for kind in ("base", "stream")} | {"tiny.yaml", "a0_stream_builtin.yaml"}
    assert expected <= set(names)
    for name in names:
        cfg = config.load_config(name)
        with open(config.resolve_config_path(name)) as f:
            first = f.readline()
        assert first.startswith("# "), f"{name} must open with a comment"
        if name.startswith(tuple(PUBLISHED_PARAMS)) and name[:-5] in PUBLISHED_PARAMS:
            # The published K600 recipe (spec §5).
            assert cfg.data.num_classes == 600
            assert cfg.train.optimizer == "rmsprop"
            assert (cfg.train.rmsprop_rho, cfg.train.momentum, cfg.train.epsilon,
                    cfg.train.clipnorm) == (0.9, 0.9, 1.0, 1.0)
            assert (cfg.train.base_learning_rate, cfg.train.base_batch_size) == (1.8, 1024)
            assert (cfg.train.label_smoothing, cfg.train.l2_weight_decay) == (0.1, 3e-5)
            assert cfg.model.stochastic_depth_drop_rate == 0.2


def test_recipe_details_per_model():
    a0 = config.load_config("a0_stream")
    assert (a0.data.num_frames, a0.data.temporal_stride, a0.data.image_size,
            a0.data.min_image_size) == (50, 5, 172, 192)
    a3 = config.load_config("a3_stream")
    assert (a3.data.num_frames, a3.eval.num_frames, a3.data.temporal_stride) == (64, 120, 2)
    assert a3.model.use_positional_encoding is True
    a5 = config.load_config("a5_stream")
    assert (a5.data.num_frames, a5.eval.num_frames, a5.data.min_image_size) == (32, 115, 368)
    t0 = config.load_config("t0_stream")
    assert (t0.data.num_frames, t0.data.temporal_stride, t0.data.image_size,
            t0.data.min_image_size, t0.model.classifier_activation) == (25, 10, 160, 176, "hard_swish")
    assert config.load_config("a4_base").data.random_stride_range == 1
    assert config.load_config("t0_base").data.random_stride_range == 0


def _check_builds(name):
    cfg = config.load_config(name)
    model = state_lib.build_model(cfg)
    assert model.count_params() == PUBLISHED_PARAMS[name], name
    assert model.is_stream == cfg.model.stream


@pytest.mark.parametrize("name", FAST_BUILDS)
def test_configs_build_published_models(name):
    _check_builds(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(PUBLISHED_PARAMS) - set(FAST_BUILDS)))
def test_large_configs_build_published_models(name):
    _check_builds(name)


def _run_cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "movinet_tf.train", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_fails_fast_without_kinetics_data(tmp_path):
    result = _run_cli("--config", "a0_stream", "--model_dir", str(tmp_path / "run"))
    assert result.returncode != 0
    assert "data.path is empty" in result.stderr
    assert "--set data.path=" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # nothing was built or written


def test_cli_reports_bad_set_and_missing_config(tmp_path):
    result = _run_cli("--config", "tiny", "--model_dir", str(tmp_path / "run"),
                      "--set", "train.learning_rat=0.1")
    assert result.returncode != 0
    assert "'train.learning_rat'" in result.stderr and "Traceback" not in result.stderr
    result = _run_cli("--config", "no_such_config", "--model_dir", str(tmp_path / "run"))
    assert result.returncode != 0 and "not found" in result.stderr


def test_duplicate_yaml_keys_are_refused_with_key_and_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("train:\n  steps: 5\n  base_learning_rate: 0.1\ndata:\n  num_frames: 8\n"
                    "train:\n  steps: 2\n")
    with pytest.raises(ValueError, match=r"duplicate key 'train' \(first at line 1, again at "
                                         r"line 6\)"):
        config.load_config(str(path))
    path.write_text("train:\n  steps: 5\n  steps: 6\n")
    with pytest.raises(ValueError, match=r"duplicate key 'steps' \(first at line 2"):
        config.load_config(str(path))
    with pytest.raises(ValueError, match="duplicate key 'a'"):
        config.load_config("tiny", ["eval.modes={a: 1, a: 2}"])
    path.write_text("train: !!python/object/apply:os.system [echo]\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        config.load_config(str(path))


@pytest.mark.parametrize("override, message", [
    ("train.base_learning_rate=.nan", "'train.base_learning_rate' is nan; expected a finite"),
    ("train.base_learning_rate=inf", "'train.base_learning_rate' is inf"),
    ("train.base_learning_rate=-1.8", "'train.base_learning_rate' must be > 0"),
    ("train.base_learning_rate=0", "'train.base_learning_rate' must be > 0"),
    ("train.clipnorm=-1", "'train.clipnorm' must be >= 0"),
    ("train.momentum=1.0", "'train.momentum' must be in [0, 1)"),
    ("train.epsilon=0", "'train.epsilon' must be > 0"),
    ("train.weight_decay=-0.1", "'train.weight_decay' must be >= 0"),
    ("model.dropout_rate=1.5", "'model.dropout_rate' must be in [0, 1)"),
    ("model.stochastic_depth_drop_rate=-0.1", "'model.stochastic_depth_drop_rate' must be in"),
    ("train.label_smoothing=1.0", "train.label_smoothing must be in [0, 1)"),
    ("data.val_fraction=.nan", "'data.val_fraction' is nan"),
    ("data.video_fps=-inf", "'data.video_fps' is -inf"),
])
def test_numbers_out_of_range_are_refused(override, message):
    with pytest.raises(ValueError) as error:
        config.load_config("tiny", [override])
    assert message in str(error.value)
    assert f"(from --set {override})" in str(error.value)


def test_errors_name_the_set_override_or_the_file(tmp_path):
    with pytest.raises(TypeError, match=r"expects int, got 'ten'\. \(from --set train.steps=ten\)$"):
        config.load_config("tiny", ["train.log_every=3", "train.steps=ten"])
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  steps: 0\n")
    with pytest.raises(ValueError, match=r"must be >= 1, got 0\. \(config file: .*bad.yaml\)$"):
        config.load_config(str(path), ["train.log_every=3"])


@pytest.mark.parametrize("name", [n[:-5] for n in config.available_configs()])
def test_every_shipped_config_can_be_shortened_with_steps_alone(name, caplog):
    full = config.load_config(name)
    for steps in (1, 3, full.train.steps // 2 or 1):
        cfg = config.load_config(name, [f"train.steps={steps}"])
        assert cfg.train.steps == steps
        assert cfg.train.warmup_steps == full.train.warmup_steps * steps // full.train.steps
        assert cfg.train.warmup_steps <= steps
    if full.train.warmup_steps:
        assert any("warm-up scaled" in r.getMessage() for r in caplog.records)
    # An explicit warm-up is kept (and must fit).
    assert config.load_config(name, ["train.steps=10", "train.warmup_steps=0"]) \
        .train.warmup_steps == 0
    if full.train.warmup_steps > 1:
        with pytest.raises(ValueError, match="exceeds train.steps"):
            config.load_config(name, ["train.steps=1", "train.warmup_steps=2"])


def test_saved_config_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        config.save_config(config.load_config("tiny"), tmp_path / "a" / "config.yaml")
    finally:
        os.umask(old)
    assert oct(os.stat(tmp_path / "a" / "config.yaml").st_mode & 0o777) == oct(0o640)
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["config.yaml"]


def test_old_eval_video_fps_key_migrates_to_data_video_fps(tmp_path, caplog):
    # A run saved before eval.video_fps merged into data.video_fps holds both keys.
    values = config.config_to_dict(config.load_config("tiny"))
    values["data"]["video_fps"] = 30.0
    values["eval"]["video_fps"] = 30.0
    assert config.config_from_dict(values).data.video_fps == 30.0
    assert "eval.video_fps is deprecated" in caplog.text
    # Only the old key: its value is the source frame rate.
    del values["data"]["video_fps"]
    assert config.config_from_dict(values).data.video_fps == 30.0
    # Two different frame rates: refused, saying which key stays.
    values["data"]["video_fps"] = 25.0
    with pytest.raises(ValueError, match=r"eval.video_fps \(30.0\) and data.video_fps \(25.0\) "
                                         "disagree.*keep the right data.video_fps"):
        config.config_from_dict(values)
    with pytest.raises(ValueError, match="Unknown config key 'eval.video_fpz'"):
        config.config_from_dict({"eval": {"video_fpz": 25.0}})
