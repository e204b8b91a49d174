"""`python -m movinet_tf.stream` on a video the test writes: TFLite and checkpoint models."""
import json
import os
import re
import subprocess
import sys
import textwrap
import tracemalloc

import cv2

import numpy as np
import pytest
import tensorflow as tf

from helpers import randomize_weights
from movinet_tf import config as config_lib
from movinet_tf import stream
from movinet_tf import streaming
from movinet_tf.data import InputContract, build_dataset, builtin, class_names
from movinet_tf.data import preprocess_eval_frames, read_video, render_clip, write_video
from movinet_tf.export_lib import TFLiteStreamer, export_tflite
from movinet_tf.export_lib.loading import build_from_config, weights_by_name
from movinet_tf.streaming import sample_indices
from movinet_tf.training import evaluation

FPS = 10.0
NUM_FRAMES = 25


def _run(*args, cwd):
    # As a user runs it: the CLI itself hides TensorFlow's log lines.
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
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
                           labels=class_names(cfg.data),
                           contract=InputContract.from_data_config(cfg.data))
    frames = render_clip(3, 21, num_frames=NUM_FRAMES, size=48)
    video = root / "clip.mp4"
    write_video(str(video), frames, fps=FPS)
    video25 = root / "clip25.mp4"
    write_video(str(video25), render_clip(5, 3, num_frames=50, size=48), fps=25.0)
    return dict(root=root, cfg=cfg, model=model, model_dir=model_dir, tflite=tflite.model_path,
                video=video, video25=video25)


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
    annotated, annotated_fps = read_video(str(root / "annotated.mp4"))
    assert annotated.shape == frames.shape and annotated_fps == FPS  # plays at real speed
    assert np.abs(annotated.astype(int) - frames.astype(int)).mean() > 0.5  # text was drawn


@pytest.mark.slow
def test_checkpoint_model_dir_matches_tflite_and_fps(setup):
    root = setup["root"]
    from_tflite = _run(str(setup["video"]), "--model", setup["tflite"], "--fps", "5", cwd=root)
    from_checkpoint = _run(str(setup["video"]), "--model", str(setup["model_dir"]), "--fps", "5",
                           cwd=root)
    assert from_checkpoint.returncode == 0, from_checkpoint.stderr[-2000:]
    assert "feeding 5 fps (--fps; the model was trained at 12.5 fps)" in from_checkpoint.stdout
    assert "Final prediction after 13 frames" in from_checkpoint.stdout  # 0, 2, .. 24 of 10 fps
    tflite_final, checkpoint_final = _final_line(from_tflite.stdout), \
        _final_line(from_checkpoint.stdout)
    assert [n for n, _ in checkpoint_final] == [n for n, _ in tflite_final]
    np.testing.assert_allclose([p for _, p in checkpoint_final], [p for _, p in tflite_final],
                               atol=0.011)


def test_bad_videos_give_one_line_errors(setup, tmp_path):
    (tmp_path / "corrupt.mp4").write_bytes(b"not a video" * 50)
    write_video(str(tmp_path / "short.mp4"), render_clip(0, 1, num_frames=1, size=32), fps=FPS)
    (tmp_path / "random.tflite").write_bytes(os.urandom(2000))
    (tmp_path / "no_ckpt").mkdir()
    (tmp_path / "bad_sm").mkdir()
    (tmp_path / "bad_sm" / "saved_model.pb").write_bytes(b"corrupt" * 20)
    model = setup["tflite"]
    cases = {(str(tmp_path / "missing.mp4"), model): "does not exist",
             (str(tmp_path / "corrupt.mp4"), model): "cannot open",
             (str(tmp_path / "short.mp4"), model): "too short",
             (str(setup["video"]), str(tmp_path / "random.tflite")): "not a valid TFLite model",
             (str(setup["video"]), str(tmp_path / "no_ckpt")): "",
             (str(setup["video"]), str(tmp_path / "bad_sm")): "Cannot load SavedModel"}
    for (video, model_path), message in cases.items():
        result = _run(video, "--model", model_path, cwd=tmp_path)
        assert result.returncode == 2, (video, model_path, result.stdout, result.stderr[-1000:])
        assert result.stderr.count("\n") == 1, result.stderr  # one line, no TF log lines
        assert re.search(rf"^error: .*{message}", result.stderr, flags=re.M), result.stderr


def test_sample_indices_follow_model_fps():
    np.testing.assert_array_equal(sample_indices(10, 10.0, 5.0), [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(sample_indices(7, 30.0, 10.0), [0, 3, 6])
    np.testing.assert_array_equal(sample_indices(4, 10.0, None), [0, 1, 2, 3])
    np.testing.assert_array_equal(sample_indices(4, 10.0, 25.0), [0, 1, 2, 3])  # no upsampling


def _final_probabilities(video, model, **kwargs):
    return stream.run_file(str(video), model, out=open(os.devnull, "w"), **kwargs)[0]


def test_default_flags_agree_with_the_evaluation_on_builtin_videos(setup):
    """The CLI's default rate is the training rate: it sees the frames the evaluation sees.

    The tiny builtin videos are 16 frames at 25 fps and the eval clip is 8 frames at stride 2
    from frame 0, i.e. 12.5 fps; 32x32 frames need no resize, so only TFLite vs Keras differs.
    """
    cfg = setup["cfg"]
    predictions = evaluation.predict_clips(setup["model"], build_dataset(cfg.data, "val", False),
                                           stream=True)
    paths, labels = builtin.list_videos(builtin.ensure_builtin(cfg.data), "val")
    np.testing.assert_array_equal(predictions["labels"], labels)
    logits = predictions["frame_logits"][:, -1]
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    model = streaming.TFLiteModel(setup["tflite"], num_threads=1)
    got = np.stack([_final_probabilities(path, model) for path in paths])
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert (got.argmax(-1) == labels).mean() == (expected.argmax(-1) == labels).mean()
    # Feeding every frame (the old default) sees other frames: the test can fail.
    every_frame = np.stack([_final_probabilities(path, model, fps=25.0) for path in paths])
    assert np.abs(every_frame - expected).max() > 1e-3


def test_manifest_carries_the_contract_and_the_cli_uses_it(setup):
    with open(os.path.splitext(setup["tflite"])[0] + ".json") as f:
        manifest = json.load(f)
    assert manifest["input_contract"] == {
        "frame_rate": 12.5, "image_size": [32, 32], "min_image_size": 32,
        "value_range": [0.0, 1.0], "channels": "RGB", "dtype": "float32", "quantization": None}
    default = _run(str(setup["video25"]), "--model", setup["tflite"], cwd=setup["root"])
    assert default.returncode == 0, default.stderr
    assert "feeding 12.5 fps (the model's input contract" in default.stdout
    assert "Final prediction after 25 frames" in default.stdout  # 50 frames at 25 fps
    override = _run(str(setup["video25"]), "--model", setup["tflite"], "--fps", "5",
                    cwd=setup["root"])
    assert "feeding 5 fps (--fps" in override.stdout
    assert "Final prediction after 10 frames" in override.stdout
    above = _run(str(setup["video25"]), "--model", setup["tflite"], "--fps", "50",
                 cwd=setup["root"])
    assert "every frame is fed (frames are never duplicated)" in above.stdout
    assert "Final prediction after 50 frames" in above.stdout


_NO_TF = textwrap.dedent("""
    import sys
    from movinet_tf import stream, streaming
    model = streaming.open_model(sys.argv[1])
    stream.run_file(sys.argv[2], model)
    assert "tensorflow" not in sys.modules, sorted(m for m in sys.modules if "tensorflow" in m)
    print("no tensorflow")
""")


def test_the_tflite_path_never_imports_tensorflow(setup):
    result = subprocess.run([sys.executable, "-c", _NO_TF, setup["tflite"], str(setup["video25"])],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no tensorflow" in result.stdout and "Final prediction" in result.stdout


def test_annotate_onto_the_input_is_refused_and_the_input_is_unchanged(setup, tmp_path):
    video = tmp_path / "in.mp4"
    video.write_bytes(setup["video"].read_bytes())
    before = video.read_bytes()
    link = tmp_path / "link.mp4"
    os.symlink(video, link)
    for target in (str(video), "in.mp4", str(link), "./in.mp4"):
        result = _run("in.mp4", "--model", setup["tflite"], "--annotate", target, cwd=tmp_path)
        assert result.returncode == 2 and "is the input" in result.stderr, result.stderr
    result = _run("in.mp4", "--model", setup["tflite"], "--plot", "in.mp4", cwd=tmp_path)
    assert result.returncode == 2
    assert video.read_bytes() == before
    (tmp_path / "old.mp4").write_bytes(b"keep me")
    result = _run("in.mp4", "--model", setup["tflite"], "--annotate", "old.mp4", cwd=tmp_path)
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert (tmp_path / "old.mp4").read_bytes() == b"keep me"


@pytest.mark.parametrize("flag", ["--fps=-5", "--fps=0", "--top_k=0", "--top_k=11",
                                  "--max_frames=0", "--num_threads=0", "--min_frames=0"])
def test_invalid_flags_exit_2_with_one_line(setup, flag):
    result = _run(str(setup["video"]), "--model", setup["tflite"], flag, cwd=setup["root"])
    assert result.returncode == 2, (flag, result.stdout)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert flag.split("=")[0].lstrip("-") in result.stderr


def test_odd_sizes_keep_their_size_and_the_overlay_stays_inside(setup, tmp_path):
    height, width = 241, 317
    path = str(tmp_path / "odd.avi")
    writer = cv2.VideoWriter(path, cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), 25.0,
                             (width, height))
    frames = render_clip(2, 4, num_frames=12, size=64)
    for frame in frames:
        writer.write(cv2.resize(frame, (width, height)))
    writer.release()
    result = _run(path, "--model", setup["tflite"], "--annotate", "out.avi", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    annotated, fps = read_video(str(tmp_path / "out.avi"))
    assert annotated.shape[1:3] == (height, width)
    assert abs(fps - 12.5) <= 0.5  # the rate fed (a whole number in OpenCV's own MJPEG)
    refused = _run(path, "--model", setup["tflite"], "--annotate", "out.mp4", cwd=tmp_path)
    assert refused.returncode == 2 and ".avi" in refused.stderr
    # A narrow frame: the text box is darkened and stays inside the frame.
    narrow = np.full((576, 96, 3), 200, np.uint8)
    annotator = streaming.Annotator(str(tmp_path / "narrow.avi"), 25.0, narrow.shape[:2])
    annotator.write(narrow, ["rotate_ccw 0.51", "move_left 0.20", "fade_in 0.10"])
    annotator.close()
    drawn, _ = read_video(str(tmp_path / "narrow.avi"))
    assert drawn.shape[1:3] == (576, 96)
    assert drawn[0, :, -3:].mean() > 150   # the right edge is untouched: text did not run off
    assert drawn[0, 2:20, 2:40].mean() < 150


def test_streaming_a_long_video_keeps_only_per_frame_probabilities(setup, tmp_path):
    height, width, num_frames = 120, 160, 600
    path = str(tmp_path / "long.avi")
    writer = cv2.VideoWriter(path, cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), 25.0,
                             (width, height))
    for i in range(num_frames):
        writer.write(np.full((height, width, 3), i % 250, np.uint8))
    writer.release()
    model = streaming.TFLiteModel(setup["tflite"], num_threads=1)
    tracemalloc.start()
    try:
        _final_probabilities(path, model, fps=25.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 600 frames are 34 MB of RGB; a handful of frames are alive at a time.
    assert peak < 8 * height * width * 3, peak


def test_streamer_checks_frames_against_its_contract(setup):
    streamer = TFLiteStreamer(setup["tflite"])
    assert streamer.contract.frame_rate == 12.5
    frame = render_clip(1, 2, num_frames=1, size=32)[0]
    as_float = streamer.step(frame.astype(np.float32) / 255.0)
    streamer.reset()
    np.testing.assert_allclose(streamer.step(frame), as_float, atol=1e-6)  # uint8 is scaled
    with pytest.raises(ValueError, match=r"channels first.*\[32, 32, 3\]"):
        streamer.step(np.transpose(frame, (2, 0, 1)).astype(np.float32) / 255.0)
    with pytest.raises(ValueError, match=r"values span \[.*\]; this model takes floats in \[0, 1\]"):
        streamer.step(frame.astype(np.float32))
    with pytest.raises(ValueError, match="has shape \\(16, 16, 3\\)"):
        streamer.step(np.zeros((16, 16, 3), np.float32))


@pytest.mark.slow
def test_a_model_from_load_model_exports_its_contract_without_being_told(setup, tmp_path):
    """The quickstart's path: `load_model(None, model_dir)` then `export_tflite(...)`."""
    from movinet_tf.export_lib import load_model
    loaded = load_model(None, str(setup["model_dir"]))
    assert loaded.contract.frame_rate == 12.5
    result = export_tflite(loaded.model, tmp_path / "m.tflite", image_size=loaded.image_size,
                           labels=loaded.labels)
    assert result.manifest["input_contract"]["frame_rate"] == 12.5
    assert TFLiteStreamer(result.model_path).contract == loaded.contract
