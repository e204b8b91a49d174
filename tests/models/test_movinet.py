import keras
import numpy as np
import pytest
import tensorflow as tf

import movinet_tf
from helpers import check_stream_equals_clip, random_video, randomize_weights, stream

BASE_PARAMS = {"a0": 3126071, "a1": 4717912, "a2": 5280922, "a3": 7443289, "a4": 11422727,
               "a5": 18763355, "t0": 1740502}
STREAM_PARAMS = {"a0": 3765983, "a1": 6481560, "a2": 7366050, "a3": 11043146, "a4": 18228326,
                 "a5": 31636734, "t0": 2385118}
# Published state counts of the stream variants at their native resolution.
STATE_COUNTS = {"a0": 43, "a1": 67, "a2": 73, "a3": 124, "a4": 178, "a5": 222, "t0": 38}


@pytest.mark.parametrize("model_id", movinet_tf.MODEL_IDS)
def test_parameter_counts_equal_the_published_models(model_id):
    assert movinet_tf.build_model(model_id).count_params() == BASE_PARAMS[model_id]
    stream_model = movinet_tf.build_model(model_id, stream=True)
    assert stream_model.count_params() == STREAM_PARAMS[model_id]
    assert len(stream_model.init_states([1, 1, 172, 172, 3])) == STATE_COUNTS[model_id]


def test_a0_stream_states_equal_the_published_names_and_shapes():
    model = movinet_tf.build_model("a0", stream=True)
    states = model.init_states([1, 1, 172, 172, 3])
    assert len(states) == 43
    buffers = {k: tuple(v.shape) for k, v in states.items() if k.endswith("_stream_buffer")}
    assert buffers == {
        "state_block1_layer0_stream_buffer": (1, 2, 22, 22, 80),
        "state_block1_layer1_stream_buffer": (1, 2, 22, 22, 80),
        "state_block1_layer2_stream_buffer": (1, 2, 22, 22, 80),
        "state_block2_layer0_stream_buffer": (1, 4, 11, 11, 184),
        "state_block2_layer1_stream_buffer": (1, 2, 11, 11, 112),
        "state_block2_layer2_stream_buffer": (1, 2, 11, 11, 184),
        "state_block3_layer0_stream_buffer": (1, 4, 11, 11, 184),
        "state_block3_layer1_stream_buffer": (1, 2, 11, 11, 184),
        "state_block3_layer2_stream_buffer": (1, 2, 11, 11, 184),
        "state_block3_layer3_stream_buffer": (1, 2, 11, 11, 184),
        "state_block4_layer0_stream_buffer": (1, 4, 6, 6, 384),
    }
    expands = [24, 80, 80, 80, 184, 112, 184, 184, 184, 184, 184, 384, 280, 280, 344]
    layers = [(0, 0), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2), (3, 0), (3, 1), (3, 2),
              (3, 3), (4, 0), (4, 1), (4, 2), (4, 3)]
    for (b, l), expand in zip(layers, expands):
        prefix = f"state_block{b}_layer{l}"
        assert tuple(states[f"{prefix}_pool_buffer"].shape) == (1, 1, 1, 1, expand)
        assert states[f"{prefix}_pool_frame_count"].dtype == tf.int32
        assert tuple(states[f"{prefix}_pool_frame_count"].shape) == (1,)
    assert tuple(states["state_head_pool_buffer"].shape) == (1, 1, 1, 1, 480)
    assert tuple(states["state_head_pool_frame_count"].shape) == (1,)
    a3 = movinet_tf.build_model("a3", stream=True).init_states([1, 1, 256, 256, 3])
    assert sum(k.endswith("_pos_enc_frame_count") for k in a3) == 33


def test_variant_defaults_follow_the_released_checkpoints():
    expected = {"a0": "swish", "a1": "hard_swish", "a2": "swish", "a3": "swish",
                "a4": "hard_swish", "a5": "swish", "t0": "hard_swish"}
    for model_id, activation in expected.items():
        config = movinet_tf.build_model(model_id, stream=True).get_config()
        assert config["classifier_activation"] == activation, model_id
        assert config["use_positional_encoding"] == (model_id in ("a3", "a4", "a5"))
        assert (config["conv_type"], config["se_type"], config["activation"],
                config["gating_activation"], config["causal"]) == \
            ("2plus1d", "2plus3d", "hard_swish", "hard_sigmoid", True)
    base = movinet_tf.build_model("a0").get_config()
    assert (base["conv_type"], base["se_type"], base["activation"], base["causal"]) == \
        ("3d", "3d", "swish", False)


CASES = [
    dict(conv_type="3d"),
    dict(conv_type="2plus1d"),
    dict(conv_type="3d_2plus1d"),
    dict(conv_type="2plus1d", use_positional_encoding=True),
    dict(conv_type="3d", use_positional_encoding=True, se_type="3d"),
    dict(conv_type="2plus1d", se_type="2d"),
]


@pytest.mark.parametrize("overrides", CASES, ids=lambda c: "-".join(f"{v}" for v in c.values()))
def test_streaming_equals_the_whole_clip(overrides):
    """Frame by frame and random sub-clip splits equal one pass; atol 1e-5 (float32)."""
    model = movinet_tf.build_model("a0", stream=True, num_classes=5, **overrides)
    randomize_weights(model, seed=11)
    video = random_video((2, 8, 32, 32, 3), seed=12)
    logits = check_stream_equals_clip(model, video, seeds=(0, 1), atol=1e-5)
    assert np.abs(logits).max() > 0.1  # The weights really are not a trivial function.


def test_streaming_a3_with_positional_encoding_at_odd_size():
    model = movinet_tf.build_model("a3", stream=True, num_classes=4)
    # A smaller gain keeps the 33 random layers' logits O(1), where an absolute
    # 1e-5 is a meaningful float32 bound.
    randomize_weights(model, seed=3, gain=1.0)
    logits = check_stream_equals_clip(model, random_video((1, 5, 40, 36, 3), seed=4), seeds=(2,))
    assert 0.05 < np.abs(logits).max() < 20


def test_streaming_changes_with_history_and_positions_matter():
    model = movinet_tf.build_model("a0", stream=True, num_classes=5, use_positional_encoding=True)
    randomize_weights(model, seed=5)
    video = random_video((1, 6, 32, 32, 3), seed=6)
    full, _ = stream(model, video, [6])
    reversed_video = video[:, ::-1]
    backwards, _ = stream(model, reversed_video, [6])
    assert np.abs(full.numpy() - backwards.numpy()).max() > 1e-3  # Causal: order matters.


def test_stream_model_trains_on_whole_clips_without_states():
    model = movinet_tf.build_model("a0", stream=True, num_classes=3)
    video = random_video((2, 4, 32, 32, 3), seed=7)
    with tf.GradientTape() as tape:
        logits = model(video, training=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits([0, 2], logits))
    grads = tape.gradient(loss, model.trainable_variables)
    assert logits.shape == (2, 3)
    assert all(g is not None for g in grads)


def test_keras_round_trip_keeps_outputs_and_config(tmp_path):
    model = movinet_tf.build_model("t0", stream=True, num_classes=6, se_type="2plus3d",
                                   use_positional_encoding=True, input_shape=(None, 32, 32, 3))
    randomize_weights(model, seed=8)
    video = random_video((1, 4, 32, 32, 3), seed=9)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded(video).numpy(), model(video).numpy(), atol=1e-6)
    a, _ = stream(loaded, video, [1, 3])
    np.testing.assert_allclose(a.numpy(), model(video).numpy(), atol=1e-5)


def test_custom_block_specs_build():
    spec = "stem 8\nblock 8: e16_k155_s2\nblock 16: e32_k333_s2\nhead 32\nclassifier 64"
    model = movinet_tf.build_model("tiny", block_specs=spec, stream=True, num_classes=2)
    assert model(random_video((1, 2, 32, 32, 3))).shape == (1, 2)
    assert model.get_config()["block_specs"] == spec


class TestBadInput:
    model = None

    @classmethod
    def setup_class(cls):
        cls.model = movinet_tf.build_model("a0", stream=True, num_classes=3)
        cls.states = cls.model.init_states([1, 1, 32, 32, 3])
        cls.frame = random_video((1, 1, 32, 32, 3))

    def test_wrong_rank_and_channels(self):
        with pytest.raises(ValueError, match="rank 4"):
            self.model(np.zeros((1, 32, 32, 3), np.float32))
        with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
            self.model(np.zeros((1, 2, 32, 32, 4), np.float32))

    def test_missing_extra_and_wrong_shape_states_are_named(self):
        partial = dict(self.states)
        del partial["state_block2_layer0_stream_buffer"]
        with pytest.raises(ValueError, match="state_block2_layer0_stream_buffer"):
            self.model({**partial, "image": self.frame})
        with pytest.raises(ValueError, match="state_typo"):
            self.model({**self.states, "state_typo": tf.zeros([1]), "image": self.frame})
        wrong = dict(self.states)
        wrong["state_block1_layer0_stream_buffer"] = tf.zeros([1, 1, 4, 4, 80])
        with pytest.raises(ValueError, match="state_block1_layer0_stream_buffer.*expected"):
            self.model({**wrong, "image": self.frame})
        with pytest.raises(ValueError, match="'image' is missing"):
            self.model(dict(self.states))

    def test_base_model_has_no_states(self):
        base = movinet_tf.build_model("t0", num_classes=3)
        with pytest.raises(ValueError, match="no states"):
            base.init_states([1, 1, 32, 32, 3])
        with pytest.raises(ValueError, match="no states"):
            base({"image": self.frame})

    def test_unknown_model_id_lists_valid_ones(self):
        with pytest.raises(ValueError, match="a0, a1, a2, a3, a4, a5, t0"):
            movinet_tf.build_model("a9")
        with pytest.raises(ValueError, match="conv_type"):
            movinet_tf.build_model("a0", conv_type="4d")
