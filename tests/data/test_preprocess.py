"""Train crop/flip consistency and eval resize + crop geometry."""
import numpy as np
import pytest
import tensorflow as tf

from movinet_tf.data import preprocess


def _ramp_clip(num_frames=8, height=32, width=32, seed=0):
    """Frame t = one random texture + 10 * t grey levels: only brightness changes over time."""
    texture = np.random.default_rng(seed).integers(0, 150, (height, width, 3))
    return np.stack([texture + 10 * t for t in range(num_frames)]).astype(np.uint8)


@pytest.mark.parametrize("seed", [(1, 2), (3, 4), (5, 6)])
def test_random_crop_and_flip_apply_one_geometry_to_every_frame(seed):
    clip = _ramp_clip()
    out = preprocess.random_crop_resize(clip, tf.constant(seed), 24, (0.1, 0.5), (0.5, 2.0))
    out, flipped = preprocess.random_flip(out, tf.constant(seed))
    out = out.numpy()
    assert out.shape == (8, 24, 24, 3) and out.dtype == np.float32
    # Same crop box and flip for all frames: frames differ only by the 10/255 ramp
    # (bilinear weights are the same, so the difference is exact up to float error).
    for t in range(8):
        np.testing.assert_allclose(out[t] - out[0], 10 * t / 255.0, atol=1e-5)
    # The crop really is a crop (area <= 0.5): it is not the whole frame resized.
    whole = tf.image.resize(clip[:1].astype(np.float32) / 255.0, [24, 24]).numpy()
    if bool(flipped):
        whole = whole[:, :, ::-1]
    assert np.abs(out[:1] - whole).mean() > 0.05


def test_flip_is_all_or_nothing_and_comes_up_about_half_the_time():
    clip = tf.constant(_ramp_clip(num_frames=4, width=20))
    flips = 0
    for i in range(40):
        out, flipped = preprocess.random_flip(clip, tf.constant([i, 0]))
        expected = clip[:, :, ::-1] if bool(flipped) else clip
        np.testing.assert_array_equal(out.numpy(), expected.numpy())
        flips += int(flipped)
    assert 10 <= flips <= 30                 # binomial(40, 0.5): outside this is < 0.2%


@pytest.mark.parametrize("height, width, resized", [(40, 60, (32, 48)), (60, 40, (48, 32)),
                                                    (33, 50, (32, 48))])
def test_eval_resizes_the_short_side_then_crops(height, width, resized):
    clip = _ramp_clip(num_frames=3, height=height, width=width)
    full = preprocess.resize_short_side(clip, 32).numpy()
    assert full.shape == (3,) + resized + (3,)
    views = preprocess.eval_crops(clip, 28, 32, num_crops=3).numpy()
    assert views.shape == (3, 3, 28, 28, 3)
    long_axis_end = max(resized) - 28
    cy, cx = (resized[0] - 28) // 2, (resized[1] - 28) // 2
    if width >= height:
        offsets = [(cy, 0), (cy, cx), (cy, long_axis_end)]   # left, centre, right
    else:
        offsets = [(0, cx), (cy, cx), (long_axis_end, cx)]   # top, centre, bottom
    for view, (y, x) in zip(views, offsets):
        np.testing.assert_allclose(view, full[:, y:y + 28, x:x + 28], atol=1e-6)
    centre = preprocess.eval_crops(clip, 28, 32, num_crops=1).numpy()
    np.testing.assert_allclose(centre[0], views[1], atol=1e-6)


def test_preprocess_eval_frames_matches_eval_crops_for_clips_and_single_frames():
    clip = _ramp_clip(num_frames=4, height=48, width=64)
    out = preprocess.preprocess_eval_frames(clip, 28, 32)
    assert isinstance(out, np.ndarray) and out.shape == (4, 28, 28, 3)
    assert 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_allclose(out, preprocess.eval_crops(clip, 28, 32)[0].numpy(), atol=1e-6)
    single = preprocess.preprocess_eval_frames(clip[2], 28, 32)
    np.testing.assert_allclose(single, out[2], atol=1e-6)


def test_preprocess_eval_frames_rejects_bad_input():
    with pytest.raises(TypeError, match="uint8"):
        preprocess.preprocess_eval_frames(np.zeros((2, 8, 8, 3), np.float32), 8, 8)
    with pytest.raises(ValueError, match="min_image_size"):
        preprocess.preprocess_eval_frames(np.zeros((2, 8, 8, 3), np.uint8), 8, 6)
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        preprocess.preprocess_eval_frames(np.zeros((2, 8, 8), np.uint8), 8, 8)
