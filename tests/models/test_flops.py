import pytest

import movinet_tf

# Multiply-adds of the official code, per clip at the paper's input sizes
# (conv + dense), counted by running tf-models-official (docs/reference_peer.md, "Benchmarks").
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
    # The official figure, 0.0453 G, leaves out the depthwise convs of its 2plus1d graph.
    assert kinds["conv"] / 1e9 == pytest.approx(0.0453, rel=0.01)
    # The 3d/sigmoid stream configuration, which the official counter sees in full.
    model_3d = movinet_tf.build_model("a0", stream=True, conv_type="3d", se_type="3d",
                                      activation="swish", gating_activation="sigmoid")
    assert movinet_tf.count_flops(model_3d, [1, 1, 172, 172, 3]) / 1e9 == \
        pytest.approx(0.0551, rel=0.01)


TINY_SPEC = "stem 8\nblock 8: e16_k{kernel}\nhead 16\nclassifier 24"


def test_tiny_base_model_flops_equal_a_hand_count():
    model = movinet_tf.build_model("tiny", block_specs=TINY_SPEC.format(kernel="133"),
                                   num_classes=3)
    # Input 2 frames of 8x8; the stem's stride 2 leaves 2 x 4 x 4 = 32 positions.
    stem = 32 * 8 * (3 * 3 * 3)       # (1, 3, 3) conv, 3 -> 8 channels
    expansion = 32 * 16 * 8           # 1x1x1, 8 -> 16
    depthwise = 32 * 16 * (3 * 3)     # (1, 3, 3) depthwise, 16 channels
    se = 16 * 8 + 8 * 16              # on the pooled clip [1, 1, 1, 1, 16]; hidden width 8
    projection = 32 * 8 * 16          # 16 -> 8; the shortcut is the identity
    head = 32 * 16 * 8                # 8 -> 16, then pooled
    classifier = 16 * 24 + 24 * 3     # hidden 24, 3 classes
    kinds = movinet_tf.count_flops(model, [1, 2, 8, 8, 3], by_kind=True)
    assert kinds == {"depthwise": depthwise,
                     "conv": stem + expansion + se + projection + head + classifier}
    assert movinet_tf.count_flops(model, [1, 2, 8, 8, 3]) == 24520


def test_tiny_stream_model_flops_per_frame_equal_a_hand_count():
    model = movinet_tf.build_model("tiny", block_specs=TINY_SPEC.format(kernel="333"),
                                   stream=True, conv_type="3d", se_type="none", num_classes=3)
    # One frame of 8x8: 4 x 4 = 16 positions after the stem.
    depthwise = 16 * 16 * (3 * 3 * 3)  # the (3, 3, 3) kernel sees this frame and 2 buffered
    conv = 16 * 8 * 27 + 16 * 16 * 8 + 16 * 8 * 16 + 16 * 16 * 8 + 16 * 24 + 24 * 3
    kinds = movinet_tf.count_flops(model, [1, 1, 8, 8, 3], by_kind=True)
    assert kinds == {"depthwise": depthwise, "conv": conv}
    assert depthwise + conv == 16968


def test_flops_need_a_full_shape():
    with pytest.raises(ValueError, match="full shape"):
        movinet_tf.count_flops(movinet_tf.build_model("t0"), [1, None, 32, 32, 3])
