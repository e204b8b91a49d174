import pytest

import movinet_tf

# Multiply-adds of the official code, per clip at the paper's input sizes
# (conv + dense), measured by the team (shared/reference/peer_setup.md).
OFFICIAL_GMACS = {"a0": ((50, 172), 2.631), "a1": ((50, 172), 5.866), "a2": ((50, 224), 11.558),
                  "a3": ((120, 256), 55.593), "a4": ((80, 290), 103.339),
                  "a5": ((120, 320), 276.334)}


@pytest.mark.parametrize("model_id", sorted(OFFICIAL_GMACS))
def test_clip_flops_match_the_official_count(model_id):
    (frames, size), official = OFFICIAL_GMACS[model_id]
    model = movinet_tf.build_model(model_id)
    gmacs = movinet_tf.count_flops(model, [1, frames, size, size, 3]) / 1e9
    assert gmacs == pytest.approx(official, rel=0.01)


def test_a0_stream_per_frame_flops():
    model = movinet_tf.build_model("a0", stream=True)
    kinds = movinet_tf.count_flops(model, [1, 1, 172, 172, 3], by_kind=True)
    # The official 0.0453 G leaves out the depthwise convs of its 2plus1d graph.
    assert kinds["conv"] / 1e9 == pytest.approx(0.0453, rel=0.01)
    total = movinet_tf.count_flops(model, [1, 1, 172, 172, 3])
    assert total == kinds["conv"] + kinds["depthwise"]
    assert total / 1e9 == pytest.approx(0.0507, rel=0.01)
    # The 3d/sigmoid stream configuration, which the official counter sees in full.
    model_3d = movinet_tf.build_model("a0", stream=True, conv_type="3d", se_type="3d",
                                      activation="swish", gating_activation="sigmoid")
    assert movinet_tf.count_flops(model_3d, [1, 1, 172, 172, 3]) / 1e9 == \
        pytest.approx(0.0551, rel=0.01)


def test_flops_need_a_full_shape():
    with pytest.raises(ValueError, match="full shape"):
        movinet_tf.count_flops(movinet_tf.build_model("t0"), [1, None, 32, 32, 3])
