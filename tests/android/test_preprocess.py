"""Java preprocessing (android_demo/core Preprocess) against the project's Python eval
preprocessing (`movinet_tf.data.preprocess.preprocess_eval_frames`) on the same frames."""
import numpy as np
import pytest

from tests.android.support import IMAGE_SIZE

# One 8-bit level: what "equal to the Python preprocessing" may differ by (float rounding of
# the resize in practice is ~1e-6; a YUV decode may differ by one level before the resize).
TOLERANCE = 1.0 / 255.0


def _eval_reference(frames, image_size, min_image_size):
    from movinet_tf.data.preprocess import preprocess_eval_frames

    return preprocess_eval_frames(frames, image_size, min_image_size)


def _java_argb(harness, frames, image_size, min_image_size, tmp_path):
    source, out = tmp_path / "frames.u8", tmp_path / "out.f32"
    np.ascontiguousarray(frames, np.uint8).tofile(source)
    _, height, width, _ = frames.shape
    harness("argb", source, height, width, image_size, min_image_size, out)
    return np.fromfile(out, "<f4").reshape(len(frames), image_size, image_size, 3)


@pytest.mark.parametrize("image_size,min_image_size", [(IMAGE_SIZE, IMAGE_SIZE), (56, 64)])
def test_argb_real_frames_match_eval_preprocessing(harness, clip_frames, tmp_path, image_size,
                                                    min_image_size):
    frames = clip_frames[:4]
    java = _java_argb(harness, frames, image_size, min_image_size, tmp_path)
    expected = _eval_reference(frames, image_size, min_image_size)
    np.testing.assert_allclose(java, expected, rtol=0, atol=TOLERANCE)
    # The crop is the centre of a landscape frame: a shifted crop would differ by far more.
    assert np.abs(java - expected).mean() < 1e-4


def test_argb_odd_portrait_frame_matches_eval_preprocessing(harness, tmp_path):
    rng = np.random.default_rng(1)
    # Smooth-ish content plus noise, odd sizes, taller than wide.
    base = rng.integers(0, 256, (2, 13, 9, 3)).astype(np.float32)
    frames = np.repeat(np.repeat(base, 8, axis=1), 8, axis=2)[:, :101, :67]
    frames = np.clip(frames + rng.normal(0, 20, frames.shape), 0, 255).astype(np.uint8)
    java = _java_argb(harness, frames, 32, 40, tmp_path)
    np.testing.assert_allclose(java, _eval_reference(frames, 32, 40), rtol=0, atol=TOLERANCE)


# ---- YUV_420_888 ----

def _rgb_to_yuv420(rgb):
    """Test data: full-range BT.601 (JFIF) Y, Cb, Cr planes; chroma is the 2x2 mean."""
    rgb = rgb.astype(np.float64)
    height, width, _ = rgb.shape
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    pad = np.pad(rgb, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    mean = pad.reshape(pad.shape[0] // 2, 2, pad.shape[1] // 2, 2, 3).mean(axis=(1, 3))
    mr, mg, mb = mean[..., 0], mean[..., 1], mean[..., 2]
    cb = 128 - 0.168736 * mr - 0.331264 * mg + 0.5 * mb
    cr = 128 + 0.5 * mr - 0.418688 * mg - 0.081312 * mb
    to_u8 = lambda plane: np.clip(np.round(plane), 0, 255).astype(np.uint8)  # noqa: E731
    return to_u8(y), to_u8(cb), to_u8(cr)


def _yuv420_to_rgb(y, u, v):
    """Independent numpy decode with the same float32 JFIF formula and rounding as Java."""
    f32 = np.float32
    height, width = y.shape
    up = lambda plane: np.repeat(np.repeat(plane, 2, 0), 2, 1)[:height, :width]  # noqa: E731
    luma = y.astype(f32)
    cb = up(u).astype(f32) - f32(128)
    cr = up(v).astype(f32) - f32(128)
    channels = [luma + f32(1.402) * cr,
                luma - f32(0.344136) * cb - f32(0.714136) * cr,
                luma + f32(1.772) * cb]
    rounded = [np.clip(np.floor(c + f32(0.5)), 0, 255) for c in channels]
    return np.stack(rounded, axis=-1).astype(np.uint8)


def _padded_plane(plane, row_stride, rng):
    """Rows of `row_stride` bytes with junk padding; the last row stops at its last sample,
    as android.media.Image planes do."""
    rows, used = plane.shape
    padded = rng.integers(0, 256, (rows, row_stride), dtype=np.uint8)
    padded[:, :used] = plane
    return padded.reshape(-1)[: (rows - 1) * row_stride + used]


def _write_frame(directory, index, layout, y, u, v, rng):
    height, width = y.shape
    y_row = width + 64
    y_file = directory / f"{index}.y"
    _padded_plane(y, y_row, rng).tofile(y_file)
    if layout == "planar":
        uv_row = u.shape[1] + 24
        u_file, v_file = directory / f"{index}.u", directory / f"{index}.v"
        _padded_plane(u, uv_row, rng).tofile(u_file)
        _padded_plane(v, uv_row, rng).tofile(v_file)
        return f"planar {width} {height} {y_row} {uv_row} {y_file} {u_file} {v_file}"
    first, second = (u, v) if layout == "nv12" else (v, u)
    interleaved = np.stack([first, second], axis=-1).reshape(u.shape[0], -1)
    uv_row = interleaved.shape[1] + 48
    uv_file = directory / f"{index}.uv"
    _padded_plane(interleaved, uv_row, rng).tofile(uv_file)
    return f"{layout} {width} {height} {y_row} {uv_row} {y_file} {uv_file}"


@pytest.mark.parametrize("rotation", [0, 90])
def test_yuv_planes_with_strides_match_eval_preprocessing(harness, clip_frames, tmp_path,
                                                           rotation):
    rng = np.random.default_rng(2)
    layouts = ["planar", "nv12", "nv21"]
    lines, expected = [], []
    for index, layout in enumerate(layouts):
        y, u, v = _rgb_to_yuv420(clip_frames[index])
        lines.append(_write_frame(tmp_path, index, layout, y, u, v, rng))
        reference = _eval_reference(_yuv420_to_rgb(y, u, v), IMAGE_SIZE, IMAGE_SIZE)
        expected.append(np.rot90(reference, k=-rotation // 90))
    listing = tmp_path / "frames.txt"
    listing.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.f32"
    harness("yuv", listing, IMAGE_SIZE, IMAGE_SIZE, rotation, out)
    java = np.fromfile(out, "<f4").reshape(len(layouts), IMAGE_SIZE, IMAGE_SIZE, 3)
    for layout, got, want in zip(layouts, java, expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE, err_msg=layout)
