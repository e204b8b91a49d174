"""Test videos whose frames say which source frame they are."""
import cv2
import numpy as np

from movinet_tf.data import video_io

NUM_BITS = 6


def index_frames(num_frames, size=32):
    """uint8 `[T, size, size, 3]`: frame i shows i in binary as 6 black/white vertical bars."""
    if num_frames > 2 ** NUM_BITS:
        raise ValueError(f"at most {2 ** NUM_BITS} frames can be indexed, got {num_frames}.")
    frames = np.zeros((num_frames, size, size, 3), np.uint8)
    edges = np.linspace(0, size, NUM_BITS + 1).round().astype(int)
    for i in range(num_frames):
        for bit in range(NUM_BITS):
            if (i >> bit) & 1:
                frames[i, :, edges[bit]:edges[bit + 1]] = 255
    return frames


def read_index(frame):
    """Inverse of `index_frames` for one frame `[H, W, 3]` in uint8 or [0, 1] float."""
    frame = np.asarray(frame, np.float32)
    if frame.max() <= 1.0:
        frame = frame * 255.0
    width = frame.shape[1]
    edges = np.linspace(0, width, NUM_BITS + 1).round().astype(int)
    value = 0
    for bit in range(NUM_BITS):
        # Read the middle of each bar; edges blur under compression and resizing.
        lo, hi = edges[bit], edges[bit + 1]
        middle = frame[:, lo + (hi - lo) // 4: hi - (hi - lo) // 4]
        if middle.mean() > 127:
            value |= 1 << bit
    return value


def read_indices(clip):
    return [read_index(frame) for frame in np.asarray(clip)]


def write_index_video(path, num_frames, size=32, fps=25.0):
    video_io.write_video(path, index_frames(num_frames, size), fps)
    return path


def write_long_mjpeg(path, num_frames, height=120, width=160, fps=25.0):
    """A long MJPG .avi whose frame i is filled with i % 250 (cheap to write, exact to decode)."""
    writer = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"),
                             fps, (width, height))
    for i in range(num_frames):
        writer.write(np.full((height, width, 3), i % 250, np.uint8))
    writer.release()
    return str(path)
