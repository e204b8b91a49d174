import keras
import numpy as np
import pytest
import tensorflow as tf

import movinet_tf
from helpers import (check_stream_equals_clip, random_splits, random_video, randomize_weights,
                     stream)
from movinet_tf.ensemble import TemporalEnsemble


def _member(seed, model_id="a0", **overrides):
    model = movinet_tf.build_model(model_id, stream=True, num_classes=4, **overrides)
    return randomize_weights(model, seed=seed)


@pytest.fixture(scope="module")
def ensemble():
    return TemporalEnsemble([_member(1), _member(2, conv_type="3d")])


def test_clip_mode_routes_even_and_odd_frames_and_averages_logits(ensemble):
    video = random_video((2, 8, 32, 32, 3), seed=3)
    member0 = ensemble.members[0](video[:, 0::2]).numpy()
    member1 = ensemble.members[1](video[:, 1::2]).numpy()
    got = ensemble(video).numpy()
    np.testing.assert_allclose(got, (member0 + member1) / 2, atol=1e-6)
    # Averaging happens before any softmax: probabilities of the average differ
    # from the average of probabilities.
    assert not np.allclose(tf.nn.softmax(got).numpy(),
                           (tf.nn.softmax(member0) + tf.nn.softmax(member1)).numpy() / 2,
                           atol=1e-4)
    # The offset matters: swapping the members' frames changes the result.
    swapped = (ensemble.members[0](video[:, 1::2]) + ensemble.members[1](video[:, 0::2])) / 2
    assert np.abs(swapped.numpy() - got).max() > 1e-3


def test_streaming_equals_clip_mode(ensemble):
    """Frame by frame and uneven chunks equal the clip-mode ensemble, atol 1e-5."""
    video = random_video((1, 7, 32, 32, 3), seed=4)
    check_stream_equals_clip(ensemble, video, seeds=(0, 1), atol=1e-5)
    for sizes in ([1] * 7, random_splits(7, np.random.default_rng(0)), [2, 3, 2]):
        _, states = stream(ensemble, video, sizes)
        assert states["ensemble_frame_count"].numpy().tolist() == [7]
        # Member 0 saw frames 0,2,4,6 and member 1 frames 1,3,5.
        assert states["member0_state_head_pool_frame_count"].numpy().tolist() == [4]
        assert states["member1_state_head_pool_frame_count"].numpy().tolist() == [3]
    specs = ensemble.state_specs(video.shape)
    assert {k: tuple(v.shape) for k, v in specs.items()} == \
        {k: tuple(v.shape) for k, v in states.items()}


def test_first_frame_uses_only_the_member_that_saw_it(ensemble):
    video = random_video((1, 1, 32, 32, 3), seed=5)
    logits, _ = stream(ensemble, video, [1])
    np.testing.assert_allclose(logits.numpy(), ensemble.members[0](video).numpy(), atol=1e-5)


def test_state_names_never_collide_and_are_complete(ensemble):
    states = ensemble.init_states([1, 1, 32, 32, 3])
    names0 = set(ensemble.members[0].init_states([1, 1, 32, 32, 3]))
    names1 = set(ensemble.members[1].init_states([1, 1, 32, 32, 3]))
    assert names0 & names1  # Same-architecture members share state names ...
    expected = ({f"member0_{n}" for n in names0} | {f"member1_{n}" for n in names1}
                | {"member0_logits", "member1_logits", "ensemble_frame_count"})
    assert set(states) == expected  # ... which the prefixes keep apart.
    assert len(states) == len(names0) + len(names1) + 3
    partial = dict(states)
    partial.pop("member1_state_head_pool_buffer")
    with pytest.raises(ValueError, match="member1_state_head_pool_buffer"):
        ensemble({**partial, "image": random_video((1, 1, 32, 32, 3))})


def test_mixed_architectures_and_round_trip(tmp_path):
    mixed = TemporalEnsemble([_member(6, "t0"), _member(7, "a0")])
    video = random_video((1, 4, 32, 32, 3), seed=8)
    path = str(tmp_path / "ensemble.keras")
    mixed.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(video).numpy(), mixed(video).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="different numbers of classes"):
        TemporalEnsemble([_member(1), movinet_tf.build_model("t0", stream=True, num_classes=3)])
