"""Reading and writing video files with OpenCV.

Every file-based source (builtin, folder, csv) opens videos through
`open_video`, so a missing, empty or corrupt file gives the same error wherever
it is read. The training pipeline decodes only the frames a clip needs
(`read_frames_at`); the streaming CLI reads one frame at a time
(`movinet_tf.data.frames.VideoFrames`).
"""
import os

import cv2
import numpy as np


class VideoDecodeError(ValueError):
    """A video file exists but cannot be decoded (corrupt, empty, no frames)."""


def open_video(path):
    """A `cv2.VideoCapture` on `path`, checked: the file exists, is not empty and opens.

    Raises:
        FileNotFoundError: if `path` does not exist.
        VideoDecodeError: if the file is empty or OpenCV cannot open it.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Video file {path!r} does not exist.")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(f"Video file {path!r} is empty (0 bytes).")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise VideoDecodeError(f"OpenCV cannot open {path!r} as a video (corrupt or "
                               "unsupported format).")
    return capture


def declared_fps(capture):
    """The frame rate the container declares, 0.0 when it declares none."""
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if np.isfinite(fps) and 0 < fps <= 1000 else 0.0


def declared_frame_count(capture):
    """The frame count the container declares, 0 when it declares none."""
    count = float(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
    return int(count) if np.isfinite(count) and count > 0 else 0


def probe_video(path):
    """`(num_frames, fps)` of a video without keeping any frame.

    `num_frames` is the count the container declares; when it declares none,
    the frames are decoded (not kept) and counted. `fps` is 0.0 when undeclared.

    Raises:
        FileNotFoundError, VideoDecodeError: as `open_video`, or no frame at all.
    """
    capture = open_video(path)
    try:
        fps = declared_fps(capture)
        count = declared_frame_count(capture)
        if not count:
            while capture.grab():
                count += 1
    finally:
        capture.release()
    if not count:
        raise VideoDecodeError(f"Video {os.fspath(path)!r} contains no decodable frames.")
    return count, fps


def read_frames_at(path, indices):
    """Decodes a video only up to the last frame `indices` needs, keeping only those frames.

    Frames are decoded in order (OpenCV's seek is not frame-exact for every
    codec); the ones not needed are grabbed and dropped at once, so memory
    holds ``len(set(indices))`` frames whatever the video's length.

    Args:
        path: the video file.
        indices: frame indices (any order, repeats allowed), each >= 0.

    Returns:
        `(frames, num_decoded)`: uint8 RGB `[len(indices), H, W, 3]` in the
        order of `indices`, and the frames decoded. When the video ends before
        the largest index, `frames` is None and `num_decoded` is the video's
        real length (shorter than its container declared).

    Raises:
        FileNotFoundError, VideoDecodeError: as `open_video`, no decodable
            frame, or a frame size that changes midway.
    """
    path = os.fspath(path)
    indices = np.asarray(indices, np.int64).reshape(-1)
    if not len(indices) or indices.min() < 0:
        raise ValueError(f"indices must be a non-empty list of frame indices >= 0; got {indices}.")
    wanted = set(int(i) for i in indices)
    last = int(indices.max())
    kept = {}
    shape = None
    capture = open_video(path)
    try:
        index = 0
        while index <= last and capture.grab():
            if index in wanted:
                ok, frame_bgr = capture.retrieve()
                if not ok:
                    break
                if shape is not None and frame_bgr.shape != shape:
                    raise VideoDecodeError(f"Video {path!r} changes frame size at frame {index}: "
                                           f"{frame_bgr.shape} after {shape}.")
                shape = frame_bgr.shape
                kept[index] = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
    if not index:
        raise VideoDecodeError(f"Video {path!r} contains no decodable frames.")
    if index <= last:
        return None, index
    return np.stack([kept[int(i)] for i in indices]), index


def read_video(path, max_frames=None):
    """Decodes a whole video file into RGB frames (short clips only: it holds them all).

    Streaming consumers read `movinet_tf.data.frames.VideoFrames` instead, and
    the training pipeline `read_frames_at`.

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
    capture = open_video(path)
    try:
        fps = declared_fps(capture)
        frames = []
        while max_frames is None or len(frames) < max_frames:
            ok, frame_bgr = capture.read()
            if not ok:
                break
            if frames and frame_bgr.shape[:2] != frames[0].shape[:2]:
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
