"""The names that the Python snippets of the docs take as given, for `tests/test_docs.py`.

A snippet such as ``logits = model(video)`` in README.md leaves `video` to the reader. The
docs test runs each snippet in a fresh interpreter, after defining, from this module, only
the names below that the snippet mentions:

| name | value |
|---|---|
| `video`, `clip` | float32 [1, 8, 64, 64, 3] in [0, 1], random, frames differ over time |
| `clip_uint8` | `clip` as uint8 [0, 255] |
| `frames` | a list of 2 random frames, each float32 [1, 1, 172, 172, 3] |
| `frame` | `frames[0]` |
| `labels` | int32 [1], class 3 |
| `loss_fn` | `keras.losses.SparseCategoricalCrossentropy(from_logits=True)` |
| `optimizer` | `keras.optimizers.Adam(1e-3)` |
| `member0`, `member1` | two A0 stream models with 10 classes (random weights) |
| `tmp_path` | a fresh folder (`pathlib.Path`) |

The folder the snippet runs in also holds ``clip.mp4`` (`write_clip`), so a snippet that
reads "clip.mp4" finds a real video.
"""
import pathlib
import tempfile

import numpy as np

VIDEO_SHAPE = (1, 8, 64, 64, 3)
FRAME_SHAPE = (1, 2, 172, 172, 3)   # the README streams 172x172 frames


def _random_video(shape, seed):
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0.0, 1.0, shape)
    drift = rng.uniform(-0.3, 0.3, (shape[0], shape[1], 1, 1, shape[-1]))
    return np.clip(0.5 * noise + 0.25 + drift, 0.0, 1.0).astype(np.float32)


def video():
    return _random_video(VIDEO_SHAPE, 0)


clip = video


def clip_uint8():
    return np.round(video() * 255).astype(np.uint8)


def frames():
    whole = _random_video(FRAME_SHAPE, 1)
    return [whole[:, t:t + 1] for t in range(FRAME_SHAPE[1])]


def frame():
    return frames()[0]


def labels():
    return np.array([3], np.int32)


def loss_fn():
    import keras
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def optimizer():
    import keras
    return keras.optimizers.Adam(1e-3)


def _member(seed):
    import keras
    import movinet_tf
    keras.utils.set_random_seed(seed)
    return movinet_tf.build_model("a0", stream=True, num_classes=10)


def member0():
    return _member(0)


def member1():
    return _member(1)


def tmp_path():
    return pathlib.Path(tempfile.mkdtemp(prefix="docs_snippet_"))


NAMES = ("video", "clip", "clip_uint8", "frames", "frame", "labels", "loss_fn", "optimizer",
         "member0", "member1", "tmp_path")


def write_clip(path, num_frames=50, size=64, fps=25.0):
    """Writes a small real mp4 (a square sliding over a gradient) with OpenCV."""
    import cv2
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {path}")
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    for t in range(num_frames):
        image = np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size)),
                          np.full((size, size), 128.0)], axis=-1).astype(np.uint8)
        x = (4 * t) % (size - 12)
        image[20:32, x:x + 12] = (255, 255, 0)
        writer.write(image)
    writer.release()
