"""`python -m movinet_tf.stream` on a video the test writes: TFLite and checkpoint models."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from helpers import randomize_weights
from movinet_tf import config as config_lib
from movinet_tf.data import class_names, preprocess_eval_frames, read_video, render_clip, write_video
from movinet_tf.export_lib import TFLiteStreamer, export_tflite
from movinet_tf.export_lib.loading import build_from_config, weights_by_name
from movinet_tf.stream import sample_indices

FPS = 10.0
NUM_FRAMES = 25


def _run(*args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "movinet_tf.stream", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny trained-looking model_dir (checkpoint + config.yaml), its TFLite, and a video."""
    root = tmp_path_factory.mktemp("stream")
    cfg = config_lib.load_config("tiny")
    model = randomize_weights(build_from_config(cfg), seed=11)
    model_dir = root / "model_dir"
    checkpoint = tf.train.Checkpoint(model=weights_by_name(model))
    tf.train.CheckpointManager(checkpoint, str(model_dir), max_to_keep=1).save()
    config_lib.save_config(cfg, str(model_dir / "config.yaml"))
    tflite = export_tflite(model, root / "tiny.tflite", image_size=cfg.data.image_size,
                           min_image_size=cfg.data.min_image_size,
                           labels=class_names(cfg.data))
    frames = render_clip(3, 21, num_frames=NUM_FRAMES, size=48)
    video = root / "clip.mp4"
    write_video(str(video), frames, fps=FPS)
    return dict(root=root, cfg=cfg, model_dir=model_dir, tflite=tflite.model_path, video=video)


def _final_line(stdout):
    lines = [line for line in stdout.splitlines() if line.startswith("Final prediction")]
    assert len(lines) == 1, stdout
    return [(name, float(p)) for name, p in re.findall(r"(\S+) ([0-9.]+)", lines[0].split(":", 1)[1])]


@pytest.mark.slow
def test_tflite_stream_prints_seconds_and_final_prediction(setup):
    root = setup["root"]
    result = _run(str(setup["video"]), "--model", setup["tflite"], "--plot", "probs.png",
                  "--annotate", "annotated.mp4", cwd=root)
    assert result.returncode == 0, result.stderr[-2000:]
    seconds = re.findall(r"^\s+([0-9.]+)s  ", result.stdout, flags=re.M)
    assert seconds == ["1.00", "2.00"]  # 25 frames at 10 fps: one line per whole second
    final = _final_line(result.stdout)
    # The same frames through the TFLite model in-process give the printed top-3.
    frames, _ = read_video(str(setup["video"]))
    cfg = setup["cfg"]
    inputs = preprocess_eval_frames(frames, cfg.data.image_size, cfg.data.min_image_size)
    logits = TFLiteStreamer(setup["tflite"]).run(inputs)[-1]
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    order = np.argsort(-probabilities)[:3]
    labels = class_names(cfg.data)
    assert [name for name, _ in final] == [labels[i] for i in order]
    np.testing.assert_allclose([p for _, p in final], probabilities[order], atol=0.006)
    assert os.path.getsize(root / "probs.png") > 1000
    annotated, _ = read_video(str(root / "annotated.mp4"))
    assert annotated.shape == frames.shape
    assert np.abs(annotated.astype(int) - frames.astype(int)).mean() > 0.5  # text was drawn


@pytest.mark.slow
def test_checkpoint_model_dir_matches_tflite_and_fps(setup):
    root = setup["root"]
    from_tflite = _run(str(setup["video"]), "--model", setup["tflite"], "--fps", "5", cwd=root)
    from_checkpoint = _run(str(setup["video"]), "--model", str(setup["model_dir"]), "--fps", "5",
                           cwd=root)
    assert from_checkpoint.returncode == 0, from_checkpoint.stderr[-2000:]
    assert "13 frames at 5 fps" in from_checkpoint.stdout  # every other frame of 25
    tflite_final, checkpoint_final = _final_line(from_tflite.stdout), \
        _final_line(from_checkpoint.stdout)
    assert [n for n, _ in checkpoint_final] == [n for n, _ in tflite_final]
    np.testing.assert_allclose([p for _, p in checkpoint_final], [p for _, p in tflite_final],
                               atol=0.011)


def test_bad_videos_give_one_line_errors(setup, tmp_path):
    (tmp_path / "corrupt.mp4").write_bytes(b"not a video" * 50)
    write_video(str(tmp_path / "short.mp4"), render_clip(0, 1, num_frames=1, size=32), fps=FPS)
    cases = {"missing.mp4": "does not exist", "corrupt.mp4": "cannot open",
             "short.mp4": "too short"}
    for name, message in cases.items():
        result = _run(str(tmp_path / name), "--model", setup["tflite"], cwd=tmp_path)
        assert result.returncode == 2, (name, result.stdout, result.stderr[-1000:])
        assert "Traceback" not in result.stderr
        assert re.search(rf"^error: .*{message}", result.stderr, flags=re.M), result.stderr


def test_sample_indices_follow_model_fps():
    np.testing.assert_array_equal(sample_indices(10, 10.0, 5.0), [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(sample_indices(7, 30.0, 10.0), [0, 3, 6])
    np.testing.assert_array_equal(sample_indices(4, 10.0, None), [0, 1, 2, 3])
    np.testing.assert_array_equal(sample_indices(4, 10.0, 25.0), [0, 1, 2, 3])  # no upsampling
