import dataclasses
import hashlib
import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import movinet_tf
import movinet_tf.models
from helpers import (check_layer, check_stream_equals_clip, random_video, randomize_weights,
                     registered_classes, stream)
from movinet_tf.models import BackboneOptions, MovinetBackbone

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


TINY_SPEC = "stem 8\nblock 8: e16_k155_s2\nblock 16: e24_k333_s2 e24_k311\nhead 16\nclassifier 24"
TINY_ARGS = dict(stream=True, num_classes=3, block_specs=TINY_SPEC, use_positional_encoding=True,
                 kernel_l2=1e-5, input_shape=(None, 32, 32, 3))
# `keras.saving.serialize_keras_object(build_model("tiny", **TINY_ARGS))`, as the
# version before `BackboneOptions` (commit 7b3d3fe) wrote it into `.keras` files.
LEGACY_TINY_CONFIG = json.loads("""{
 "build_config": {"shapes_dict": {}},
 "class_name": "MovinetClassifier",
 "compile_config": {},
 "config": {
  "activation": "hard_swish", "batch_norm_epsilon": 0.001, "batch_norm_momentum": 0.99,
  "block_specs": "stem 8\\nblock 8: e16_k155_s2\\nblock 16: e24_k333_s2 e24_k311\\nhead 16\\nclassifier 24",
  "causal": true, "classifier_activation": "swish", "conv_type": "2plus1d", "dropout_rate": 0.2,
  "gating_activation": "hard_sigmoid", "input_video_shape": [null, 32, 32, 3],
  "kernel_l2": 1e-05, "model_id": "tiny", "name": "movinet_tiny_stream", "num_classes": 3,
  "se_type": "2plus3d", "stochastic_depth_drop_rate": 0.2, "trainable": true,
  "use_positional_encoding": true
 },
 "module": "movinet_tf.models.movinet",
 "registered_name": "movinet_tf>MovinetClassifier"
}""")
# sha256 of the sorted "path shape" lines of every weight, at commit 7b3d3fe:
# official checkpoints and training checkpoints are found by these paths.
WEIGHT_DIGESTS = {
    "tiny": (97, "0c654b065cc1838c8e19b0a885ca4413967f644f68bc87decd2c494e548434fc"),
    "a0": (389, "8b41910796df190f08d3c76410cbec4375c911d95410097d68487dfaadb7bb7d"),
}


def _weight_digest(model):
    lines = [f"{w.path} {tuple(w.shape)}" for w in sorted(model.weights, key=lambda w: w.path)]
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_weight_paths_are_unchanged():
    assert _weight_digest(movinet_tf.build_model("tiny", **TINY_ARGS)) == WEIGHT_DIGESTS["tiny"]
    assert _weight_digest(movinet_tf.build_model("a0", stream=True)) == WEIGHT_DIGESTS["a0"]


def test_a_keras_file_in_the_earlier_config_format_loads(tmp_path):
    model = movinet_tf.build_model("tiny", **TINY_ARGS)
    randomize_weights(model, seed=21)
    current = tmp_path / "current.keras"
    model.save(current)
    # The same archive with the earlier version's config.json in it.
    legacy = tmp_path / "legacy.keras"
    with zipfile.ZipFile(current) as source, zipfile.ZipFile(legacy, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(LEGACY_TINY_CONFIG).encode()
            target.writestr(item, data)
    loaded = keras.saving.load_model(legacy)
    # The format is unchanged: the config it writes is the one it read.
    assert json.loads(json.dumps(loaded.get_config())) == LEGACY_TINY_CONFIG["config"]
    assert loaded.options == model.options
    assert _weight_digest(loaded) == WEIGHT_DIGESTS["tiny"]
    video = random_video((1, 4, 32, 32, 3), seed=22)
    np.testing.assert_allclose(loaded(video).numpy(), model(video).numpy(), atol=1e-6, rtol=0)
    from_config = movinet_tf.models.MovinetClassifier.from_config(LEGACY_TINY_CONFIG["config"])
    from_config.build()
    assert _weight_digest(from_config) == WEIGHT_DIGESTS["tiny"]


def test_options_travel_from_build_model_to_the_backbone():
    model = movinet_tf.build_model("a0", stream=True, num_classes=4, se_type="2d",
                                   stochastic_depth_drop_rate=0.1, kernel_l2=2e-5,
                                   batch_norm_epsilon=1e-2)
    assert model.options is model.backbone.options
    assert model.options == BackboneOptions(
        causal=True, conv_type="2plus1d", se_type="2d", activation="hard_swish",
        gating_activation="hard_sigmoid", use_positional_encoding=False,
        stochastic_depth_drop_rate=0.1, batch_norm_momentum=0.99, batch_norm_epsilon=1e-2,
        kernel_l2=2e-5)
    # Every layer was built from them.
    block = model.backbone.blocks[-1]
    assert (block.se.se_type, block.feature.conv_type, block.feature.batch_norm_epsilon,
            block.kernel_l2, block.activation) == ("2d", "2plus1d", 1e-2, 2e-5, "hard_swish")
    assert block.stochastic_depth_rate == pytest.approx(0.1)
    assert model.classifier_head.kernel_l2 == 2e-5
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.options.causal = False


@pytest.mark.parametrize("bad,match", [
    (dict(conv_type="4d"), "conv_type"), (dict(se_type="5d"), "se_type"),
    (dict(use_positional_encoding=True), "causal"), (dict(activation="tanhh"), "tanhh"),
])
def test_bad_options_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        BackboneOptions(**bad)


def test_every_registered_model_class_is_round_tripped(tmp_path):
    # MovinetClassifier: test_keras_round_trip_keeps_outputs_and_config above.
    assert sorted(registered_classes(movinet_tf.models)) == ["MovinetBackbone",
                                                             "MovinetClassifier"]
    options = BackboneOptions(causal=True, conv_type="3d_2plus1d", se_type="2plus3d",
                              activation="hard_swish", gating_activation="hard_sigmoid",
                              use_positional_encoding=True, batch_norm_epsilon=1e-2)
    backbone = MovinetBackbone(TINY_SPEC, options)
    backbone.build((None, None, None, None, 3))
    video = random_video((1, 5, 32, 32, 3), seed=23)
    loaded = check_layer(backbone, video, tmp_path, seed=24)
    assert loaded.options == options
    # The backbone's features after a stream equal the whole clip's; so do its states.
    check_stream_equals_clip(loaded, video)
    specs = loaded.state_specs(video.shape)
    _, states = loaded(video)
    assert list(specs) == list(states)
    assert {k: tuple(v.shape) for k, v in specs.items()} == \
        {k: tuple(v.shape) for k, v in states.items()}


def test_state_specs_are_named_tensor_specs_and_init_states_takes_a_dynamic_shape():
    model = movinet_tf.build_model("tiny", **TINY_ARGS)
    specs = model.state_specs([2, 1, 40, 24, 3])
    assert all(isinstance(s, tf.TensorSpec) and s.name == k for k, s in specs.items())
    free = model.state_specs([None, None, None, None, 3])
    assert list(free) == list(specs)
    assert free["state_block1_layer0_stream_buffer"].shape.as_list() == [None, 2, None, None, 24]
    init = tf.function(model.init_states).get_concrete_function(tf.TensorSpec([5], tf.int32))
    states = init(tf.constant([2, 1, 40, 24, 3]))
    assert {k: tuple(v.shape) for k, v in states.items()} == \
        {k: tuple(s.shape) for k, s in specs.items()}
    assert tuple(specs["state_block1_layer0_stream_buffer"].shape) == (2, 2, 5, 3, 24)
