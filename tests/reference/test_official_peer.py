"""Our models against the official TF Model Garden MoViNet, with the same weights.

The official model runs in a subprocess (tf_keras), gets random weights and saves
a `tf.train.Checkpoint` as Model Garden does; we load it with
`movinet_tf.load_official_checkpoint` and must reproduce its logits, its state
names and shapes, and its streaming results. These are what a user who loads a
published checkpoint relies on.

Tolerance: the two implementations use different but equivalent op layouts
(e.g. Conv2D + reshapes against Conv3D), so float32 sums come in another order.
Logits are O(1-10) here and differ by about 1e-5 (measured); we allow
atol 1e-4 + rtol 1e-4 (also for states, whose values can be larger).
"""
import json

import numpy as np
import pytest

import movinet_tf
from helpers import random_video
from reference import peer

pytestmark = [
    pytest.mark.reference,
    pytest.mark.slow,
    pytest.mark.skipif(not peer.have_reference(), reason=peer.SKIP_REASON),
]

ATOL, RTOL = 1e-4, 1e-4
NUM_CLASSES = 5
VIDEO_SHAPE = (1, 8, 32, 32, 3)
# Uneven chunks, so buffers carry frames across calls of different lengths.
STREAM_SPLIT = (3, 1, 4)

# name -> (official_runner flags, build_model overrides)
CONFIGS = {
    # The released A0-stream / TFLite configuration.
    "a0_stream": dict(
        model_id="a0", causal=True, conv_type="2plus1d", se_type="2plus3d",
        activation="hard_swish", gating_activation="hard_sigmoid",
        classifier_activation="hard_swish", use_positional_encoding=False),
    # The base configuration, whole clip only.
    "a0_base": dict(
        model_id="a0", causal=False, conv_type="3d", se_type="3d",
        activation="swish", gating_activation="sigmoid",
        classifier_activation="swish", use_positional_encoding=False),
    # The trained-as layout of stream checkpoints, with 3D SE pools and positional encoding.
    "a0_3d_2plus1d_posenc": dict(
        model_id="a0", causal=True, conv_type="3d_2plus1d", se_type="3d",
        activation="swish", gating_activation="sigmoid",
        classifier_activation="swish", use_positional_encoding=True),
}


@pytest.fixture(scope="module")
def video():
    return random_video(VIDEO_SHAPE, seed=3)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def official_run(request, tmp_path_factory, video):
    """The official run of one configuration, and our model of the same architecture."""
    config = CONFIGS[request.param]
    causal = config["causal"]
    # The released stream configuration is also saved as a SavedModel, the TF Hub/Kaggle format.
    paths = peer.run_official(
        tmp_path_factory.mktemp(request.param), video=video, num_classes=NUM_CLASSES,
        stream=causal, stream_step=1, seed=7, saved_model=request.param == "a0_stream",
        **config)
    overrides = {key: value for key, value in config.items() if key not in ("model_id", "causal")}
    model = movinet_tf.build_model(config["model_id"], stream=causal, num_classes=NUM_CLASSES,
                                   **overrides)
    model(video, training=False)
    return request.param, model, paths


@pytest.fixture(scope="module")
def official(official_run):
    """As `official_run`, with the official checkpoint loaded into our model."""
    name, model, paths = official_run
    movinet_tf.load_official_checkpoint(model, paths["checkpoint"])
    return name, model, paths


def test_loaded_checkpoint_reproduces_official_clip_logits(official, video):
    name, model, paths = official
    expected = np.load(paths["clip_logits"])
    # Random weights must give informative logits, or the comparison proves little.
    assert np.ptp(expected) > 0.1, f"{name}: official logits are nearly constant: {expected}"
    np.testing.assert_allclose(model(video, training=False).numpy(), expected,
                               atol=ATOL, rtol=RTOL, err_msg=name)


def test_hub_format_saved_model_loads_and_reproduces_official_logits(official_run, video):
    name, _, paths = official_run
    if "saved_model" not in paths:
        pytest.skip(f"{name}: only a0_stream is saved as a SavedModel")
    config = CONFIGS[name]
    overrides = {key: value for key, value in config.items() if key not in ("model_id", "causal")}
    model = movinet_tf.build_model(config["model_id"], stream=True, num_classes=NUM_CLASSES,
                                   **overrides)
    model(video, training=False)
    assigned = movinet_tf.load_official_checkpoint(model, paths["saved_model"])
    assert assigned == len(model.weights)
    np.testing.assert_allclose(model(video, training=False).numpy(),
                               np.load(paths["clip_logits"]), atol=ATOL, rtol=RTOL)


def test_state_names_shapes_and_dtypes_match_official(official_run):
    name, model, paths = official_run
    with open(paths["states"]) as f:
        expected = json.load(f)
    if not model.causal:
        assert expected == {}
        return
    ours = {key: {"shape": [int(d) for d in spec.shape], "dtype": spec.dtype.name}
            for key, spec in model.state_specs([1, 1, *VIDEO_SHAPE[2:]]).items()}
    assert ours == expected


def test_streaming_matches_official_streaming(official, video):
    name, model, paths = official
    if not model.causal:
        pytest.skip(f"{name} is a base model: no streaming")
    official_per_frame = np.load(paths["stream_logits"])
    assert official_per_frame.shape == (VIDEO_SHAPE[1], 1, NUM_CLASSES)
    # Ours in uneven chunks; the official ran frame by frame. After each chunk the
    # logits must match the official logits after the same number of frames.
    states = model.init_states(VIDEO_SHAPE)
    seen = 0
    for size in STREAM_SPLIT:
        logits, states = model({**states, "image": video[:, seen:seen + size]})
        seen += size
        np.testing.assert_allclose(logits.numpy(), official_per_frame[seen - 1],
                                   atol=ATOL, rtol=RTOL, err_msg=f"{name} after {seen} frames")
    final = np.load(paths["final_states"])
    assert sorted(final.files) == sorted(states)
    for key in final.files:
        expected = final[key]
        if key.endswith("_pool_buffer"):
            # Documented difference (movinet_tf/layers/pooling.py): the official
            # buffer holds the running sum, ours the running mean.
            expected = expected / final[key.replace("_pool_buffer", "_pool_frame_count")]
        np.testing.assert_allclose(np.asarray(states[key]), expected, atol=ATOL, rtol=RTOL,
                                   err_msg=f"{name} state {key}")
    assert int(np.asarray(states["state_head_pool_frame_count"])[0]) == VIDEO_SHAPE[1]


def test_run_official_rejects_unknown_arguments(tmp_path, video):
    with pytest.raises(TypeError, match="se_typ"):
        peer.run_official(tmp_path, video=video, se_typ="3d")
