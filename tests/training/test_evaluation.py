"""Tests for movinet_tf.training.evaluation: top-k, multi-view averaging, streaming by seconds."""
import dataclasses

import helpers
import numpy as np
import pytest
import tensorflow as tf

from movinet_tf import config
from movinet_tf.training import evaluation
from movinet_tf.training import state


def test_topk_accuracy_counts_hits():
    logits = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [0.0, 5.0, 1.0]])
    labels = np.array([0, 0, 2])
    assert evaluation.topk_accuracy(logits, labels, 1) == pytest.approx(1 / 3)
    assert evaluation.topk_accuracy(logits, labels, 2) == pytest.approx(2 / 3)
    assert evaluation.topk_accuracy(logits, labels, 5) == 1.0  # k capped at the class count
    with pytest.raises(ValueError, match="logits"):
        evaluation.topk_accuracy(logits, labels[:2], 1)


def test_stream_accuracy_by_second_picks_the_frames_of_each_second():
    # 8 model frames at 2.5 frames per second: seconds 1 and 2 end at frames 3 and 5,
    # the clip at frame 8 (3.2 s). The right class wins from frame 5 on.
    num_frames, labels = 8, np.array([1, 1])
    frame_logits = np.zeros([2, num_frames, 3], np.float32)
    frame_logits[:, :, 0] = 1.0
    frame_logits[:, 4:, 1] = 2.0
    rows = evaluation.stream_accuracy_by_second(frame_logits, labels, 2.5)
    assert [(r["seconds"], r["frames"], r["top1"]) for r in rows] == [
        (1.0, 3, 0.0), (2.0, 5, 1.0), (3.2, 8, 1.0)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = config.load_config("tiny", [
        f"data.path={tmp_path_factory.mktemp('builtin')}/tiny", "data.eval_num_clips=2",
        "eval.modes=[clip, multi_clip, stream]"])
    model = state.build_model(cfg)
    helpers.randomize_weights(model, seed=3)
    return cfg, model


def test_predict_clips_averages_logits_over_views(tiny):
    _, model = tiny
    views = np.stack([helpers.random_video([3, 8, 32, 32, 3], seed=s) for s in (1, 2)], axis=1)
    labels = np.array([0, 1, 2], np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((views, labels)).batch(2)
    predicted = evaluation.predict_clips(model, dataset)
    separate = [model(views[:, v], training=False).numpy() for v in range(2)]
    np.testing.assert_allclose(predicted["logits"], np.mean(separate, axis=0), atol=1e-5)
    np.testing.assert_array_equal(predicted["labels"], labels)


def test_streaming_ends_at_the_clip_prediction(tiny):
    _, model = tiny
    video = helpers.random_video([2, 8, 32, 32, 3], seed=5)
    dataset = tf.data.Dataset.from_tensor_slices((video, np.array([0, 1], np.int32))).batch(2)
    predicted = evaluation.predict_clips(model, dataset, stream=True)
    assert predicted["frame_logits"].shape == (2, 8, 10)
    # Frame by frame with states ends where the whole-clip pass is (atol 1e-4).
    np.testing.assert_allclose(predicted["frame_logits"][:, -1], predicted["logits"], atol=1e-4)
    # ...and the early frames really are partial predictions.
    assert not np.allclose(predicted["frame_logits"][:, 0], predicted["logits"], atol=1e-3)


def test_evaluate_runs_every_mode_on_the_eval_split(tiny):
    cfg, model = tiny
    results = evaluation.evaluate(model, cfg)
    assert list(results) == ["clip", "multi_clip", "stream"]
    assert results["clip"]["videos"] == results["multi_clip"]["videos"] == 10
    assert results["multi_clip"]["views"] == "2x1"
    assert results["stream"]["top1"] == results["clip"]["top1"]
    assert results["stream"]["per_second"][-1]["frames"] == cfg.data.num_frames
    table = evaluation.format_results(results)
    assert "multi_clip" in table and "streaming accuracy" in table


def test_eval_num_frames_overrides_the_clip_length(tiny):
    cfg, model = tiny
    cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, num_frames=6, modes=["stream"]))
    results = evaluation.evaluate(model, cfg)
    assert results["stream"]["per_second"][-1]["frames"] == 6


def test_topk_accuracy_counts_nan_inf_and_ties_as_misses():
    labels = np.array([0, 1, 2, 0])
    diverged = np.full([4, 3], np.nan)
    assert evaluation.topk_accuracy(diverged, labels, 1) == 0.0
    assert evaluation.topk_accuracy(diverged, labels, 5) == 0.0
    assert evaluation.topk_accuracy(np.full([4, 3], np.inf), labels, 1) == 0.0
    assert evaluation.topk_accuracy(np.zeros([4, 3]), labels, 1) == 0.0   # all tied
    # A tie for the k-th place is a miss; one NaN anywhere in a row makes it a miss.
    logits = np.array([[2.0, 2.0, 0.0],      # label 0 tied with class 1: miss at k=1, hit at k=2
                       [0.0, 3.0, 1.0],      # clear hit
                       [1.0, np.nan, 5.0],   # label wins, but the row is not finite: miss
                       [1.0, 3.0, 3.0]])     # label third behind a tie: miss at k=1 and 2
    # Hand count: k=1 -> rows {1}; k=2 -> rows {0, 1}; k=3 -> rows {0, 1, 3}.
    assert evaluation.topk_accuracy(logits, labels, 1) == pytest.approx(1 / 4)
    assert evaluation.topk_accuracy(logits, labels, 2) == pytest.approx(2 / 4)
    assert evaluation.topk_accuracy(logits, labels, 3) == pytest.approx(3 / 4)
