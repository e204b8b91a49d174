"""Reading and writing video files with OpenCV.

Every file-based source (builtin, folder, csv) and the streaming CLI decode
through `read_video`, so a video behaves the same wherever it is read.
"""
import os

import cv2
import numpy as np


class VideoDecodeError(ValueError):
    """A video file exists but cannot be decoded (corrupt, empty, no frames)."""


def read_video(path, max_frames=None):
    """Decodes a whole video file into RGB frames.

    Args:
        path: the video file (anything `cv2.VideoCapture` reads: mp4, avi, ...).
        max_frames: stop after this many frames; None reads them all.

    Returns:
        `(frames, fps)`: uint8 array `[T, H, W, 3]` in RGB order with T >= 1, and
        the frame rate the container declares (0.0 when it declares none).

    Raises:
        FileNotFoundError: if `path` does not exist.
        VideoDecodeError: if the file cannot be opened as a video, holds no
            frames, or changes frame size midway.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Video file {path!r} does not exist.")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(f"Video file {path!r} is empty (0 bytes).")
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise VideoDecodeError(f"OpenCV cannot open {path!r} as a video (corrupt or "
                                   "unsupported format).")
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if not np.isfinite(fps) or fps < 0:
            fps = 0.0
        frames = []
        while max_frames is None or len(frames) < max_frames:
            ok, frame_bgr = capture.read()
            if not ok:
                break
            if frames and frame_bgr.shape != frames[0].shape:
                raise VideoDecodeError(
                    f"Video {path!r} changes frame size at frame {len(frames)}: "
                    f"{frame_bgr.shape} after {frames[0].shape}.")
            frames.append(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames:
        raise VideoDecodeError(f"Video {path!r} contains no decodable frames.")
    return np.stack(frames), fps


def write_video(path, frames, fps=25.0, fourcc="mp4v"):
    """Encodes RGB frames into a video file, atomically.

    The video is written under a temporary name in the same folder and renamed
    into place, so a reader never sees a half-written file.

    Args:
        path: output file; its extension picks the container (e.g. ``.mp4``).
        frames: uint8 array `[T, H, W, 3]`, RGB.
        fps: frame rate to declare.
        fourcc: four-character codec code, e.g. ``mp4v`` or ``MJPG``.

    Raises:
        ValueError: if `frames` is not uint8 `[T, H, W, 3]` with T >= 1, or the
            codec cannot be opened.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"frames must be uint8 [T, H, W, 3] with T >= 1; got {frames.dtype} "
                         f"{frames.shape}.")
    path = os.fspath(path)
    root, ext = os.path.splitext(path)
    temp_path = f"{root}.tmp-{os.getpid()}{ext}"
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(temp_path, cv2.VideoWriter_fourcc(*fourcc), float(fps),
                             (width, height))
    try:
        if not writer.isOpened():
            raise ValueError(f"OpenCV cannot open a {fourcc!r} writer for {path!r}.")
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        os.replace(temp_path, path)
    finally:
        writer.release()
        if os.path.exists(temp_path):
            os.remove(temp_path)
