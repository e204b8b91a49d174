"""Fine-tuning initialisation (`state.load_init_checkpoint`) from an official-format checkpoint.

The official code (a subprocess, tf_keras) writes a Model Garden checkpoint of the
quickstart's A0-Stream with random weights and its own logits for a random clip;
`train.init_checkpoint` must recognise the format, and with ``modules='all'`` our
model must then reproduce those logits (the independent computation), while
``modules='backbone'`` loads the same backbone and leaves the new head alone.
Tolerance as in tests/reference: atol 1e-4 + rtol 1e-4 on O(1-10) logits.
"""
import numpy as np
import pytest

from helpers import random_video
from movinet_tf import config
from movinet_tf.training import state as state_lib
from reference import peer

NUM_CLASSES = 10  # The builtin set's.


def test_freeze_backbone_needs_an_init_checkpoint():
    with pytest.raises(ValueError, match="train.freeze_backbone=true needs train.init_checkpoint"):
        config.load_config("a0_stream_builtin", ["train.freeze_backbone=true"])


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    video = random_video((1, 8, 56, 56, 3), seed=5)
    paths = peer.run_official(
        tmp_path_factory.mktemp("official"), video=video, model_id="a0", causal=True,
        conv_type="2plus1d", se_type="2plus3d", activation="hard_swish",
        gating_activation="hard_sigmoid", classifier_activation="swish",
        num_classes=NUM_CLASSES)
    return {"video": video, "checkpoint": paths["checkpoint"],
            "logits": np.load(paths["clip_logits"])}


def _weights(layer):
    return [np.array(w) for w in layer.weights]


@pytest.mark.reference
@pytest.mark.slow
@pytest.mark.skipif(not peer.have_reference(), reason=peer.SKIP_REASON)
def test_official_checkpoint_initialises_the_quickstart_model(official):
    cfg = config.load_config("a0_stream_builtin")
    whole = state_lib.build_model(cfg)
    state_lib.load_init_checkpoint(whole, official["checkpoint"], "all")
    np.testing.assert_allclose(np.array(whole(official["video"])), official["logits"],
                               atol=1e-4, rtol=1e-4)

    partial = state_lib.build_model(cfg)
    head_before = _weights(partial.classifier_head)
    assert any(not np.allclose(a, b) for a, b in
               zip(_weights(partial.backbone), _weights(whole.backbone)))
    state_lib.load_init_checkpoint(partial, official["checkpoint"], "backbone")
    for loaded, expected in zip(_weights(partial.backbone), _weights(whole.backbone)):
        np.testing.assert_array_equal(loaded, expected)
    for kept, before in zip(_weights(partial.classifier_head), head_before):
        np.testing.assert_array_equal(kept, before)
