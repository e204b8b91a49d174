"""The README's main job, end to end on the tiny config: train, export TFLite, stream."""
import json
import os
import subprocess
import sys

import numpy as np

from movinet_tf import checkpoints
from movinet_tf.export_lib import TFLiteStreamer

# float32 TFLite against the Keras model (the project's export bound).
TFLITE_VS_KERAS_ATOL = 1e-4


def _quickstart(model_dir, *extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "movinet_tf.quickstart", "--config", "tiny", "--model_dir",
         str(model_dir), *extra], env=env, capture_output=True, text=True, timeout=600,
        check=False)


def test_quickstart_trains_exports_and_streams(tmp_path):
    model_dir = tmp_path / "run"
    result = _quickstart(model_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for stage in ("1/3 train", "2/3 export", "3/3 stream", "Final prediction after"):
        assert stage in out, out[-3000:]
    summary = json.loads((model_dir / "quickstart_summary.json").read_text())
    assert set(summary["eval"]) == {"clip", "stream"}
    # The learning curve (cross-entropy and L2 term apart) is a PNG in model_dir.
    with open(summary["learning_curve"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.dirname(summary["learning_curve"]) == str(model_dir)
    # The exported file is a working single-frame streaming model with its labels.
    streamer = TFLiteStreamer(summary["tflite"])
    assert len(streamer.labels) == 10
    logits = streamer.step(np.full((32, 32, 3), 0.5, np.float32))
    assert logits.shape == (10,) and np.all(np.isfinite(logits))
    assert summary["true_class"] in streamer.labels
    # Checked here, not by the figure the quickstart printed: the trained Keras model of the
    # run on a random 8-frame clip (one forward pass) against the file streamed frame by
    # frame in LiteRT; after the last frame the stream has seen the whole clip.
    _, model, _ = checkpoints.load_run(str(model_dir))
    clip = np.random.default_rng(0).uniform(size=(8, 32, 32, 3)).astype(np.float32)
    keras_logits = np.asarray(model(clip[None], training=False)).reshape(-1)
    tflite_logits = streamer.run(clip)[-1]
    np.testing.assert_allclose(tflite_logits, keras_logits, atol=TFLITE_VS_KERAS_ATOL)
    assert summary["predicted_class"] in streamer.labels

    # A second run resumes the finished training instead of starting over.
    again = _quickstart(model_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "ckpt-6" in again.stderr + again.stdout
    assert not (model_dir / "ckpt-7.index").exists()


def test_quickstart_refuses_non_builtin_data(tmp_path):
    result = _quickstart(tmp_path / "run", "--set", "data.source=folder", "--set",
                         f"data.path={tmp_path}")
    assert result.returncode == 2
    assert "builtin" in result.stderr
