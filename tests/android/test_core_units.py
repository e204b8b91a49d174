"""Small behaviours of the Java core: top-k, the frame gate, and dx-compatible bytecode."""
import subprocess

import numpy as np

from tests.android.support import key_values


def _topk(harness, scores, k, tmp_path):
    path = tmp_path / "scores.f32"
    np.asarray(scores, "<f4").tofile(path)
    return [int(i) for i in key_values(harness("topk", path, k).stdout)["topk"].split(",")]


def test_topk_orders_largest_first_and_breaks_ties_by_index(harness, tmp_path):
    assert _topk(harness, [0.1, 0.5, 0.5, 0.2, 0.9], 3, tmp_path) == [4, 1, 2]


def test_topk_returns_at_most_the_class_count(harness, tmp_path):
    # The reference app used max(k, n) here and returned every class.
    assert _topk(harness, [0.3, 0.1, 0.6], 5, tmp_path) == [2, 0, 1]


def test_topk_matches_numpy_on_random_scores(harness, tmp_path):
    scores = np.random.default_rng(3).normal(size=600).astype(np.float32)
    assert _topk(harness, scores, 3, tmp_path) == list(np.argsort(-scores)[:3])


def test_frame_gate_feeds_a_30fps_camera_at_5fps(harness):
    # 10 s of a jittery 30 fps camera (+-3 ms) -> 5 fps, i.e. 50 frames.
    assert key_values(harness("gate", 5, 30, 10, 3).stdout)["accepted"] == "50"
    # A camera slower than the model rate: every frame is taken.
    assert key_values(harness("gate", 5, 4, 10, 0).stdout)["accepted"] == "40"


def test_core_bytecode_has_no_invokedynamic(core_classes):
    # dx (the offline dexer) rejects invokedynamic below min-sdk 26: no lambdas or method
    # references in the core.
    classes = sorted(str(p) for p in (core_classes / "org").rglob("*.class"))
    assert len(classes) >= 8
    listing = subprocess.run(["javap", "-c", "-p", *classes], capture_output=True, text=True,
                             check=True).stdout
    assert "invokedynamic" not in listing
    assert "android/" not in listing
