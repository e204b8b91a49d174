"""The frame source of every streaming consumer: decode, resample, resize and crop one frame at a time.

`VideoFrames` iterates over a video file or a camera and yields one `Frame` at
a time, dropping frames (never duplicating them) so that the model sees
``target_fps`` frames per second. `preprocess_frame` turns one frame into the
model input of an `InputContract` with OpenCV: the short side resized to
``min_image_size`` (bilinear, the long side rounded half up as in
`movinet_tf.data.preprocess.short_side_size`), the centre crop, then the
contract's value range. It agrees with the evaluation preprocessing
(`preprocess_eval_frames`, TensorFlow) to within 1.5/255 per pixel: OpenCV
rounds its resize to uint8 and uses fixed-point weights.

Nothing here imports TensorFlow, so the TFLite streaming path starts in well
under a second.

Example:
    with VideoFrames("clip.mp4", target_fps=12.5) as frames:
        for frame in frames:                       # Frame(index, time, rgb uint8 [H, W, 3])
            logits = model.step(preprocess_frame(frame.bgr, contract, bgr=True))
        print(frames.fps, frames.decoded, frames.declared_frames)
"""
import math
import os
import queue
import threading

import cv2
import numpy as np

from movinet_tf.data import video_io

# The rate assumed for a file that declares none (the builtin set's rate).
DEFAULT_FPS = 25.0


class Frame:
    """One decoded frame: its index in the source, its time (s) and its pixels.

    OpenCV decodes to BGR; `rgb` converts on first use, so a consumer that only
    needs the model input (`preprocess_frame(frame.bgr, contract, bgr=True)`)
    never converts the full-size frame.
    """
    __slots__ = ("index", "time", "bgr", "_rgb")

    def __init__(self, index, time, bgr):
        self.index = index
        self.time = time
        self.bgr = bgr
        self._rgb = None

    @property
    def rgb(self):
        """uint8 RGB `[H, W, 3]`."""
        if self._rgb is None:
            self._rgb = cv2.cvtColor(self.bgr, cv2.COLOR_BGR2RGB)
        return self._rgb


def keeps_frame(index, source_fps, target_fps, previous_slot):
    """Whether source frame `index` starts a new slot of the target rate; returns (keep, slot).

    The target time axis is cut into slots of ``1 / target_fps`` seconds; the
    first source frame in each slot is kept. At or above the source rate every
    frame is kept (no duplicates).
    """
    if not target_fps or target_fps >= source_fps:
        return True, index
    slot = math.floor(index / source_fps * target_fps + 1e-9)
    return slot != previous_slot, slot


class VideoFrames:
    """A one-pass iterator over the frames of a video file or camera, resampled on the fly.

    Args:
        source: a video file path, or an int camera index.
        target_fps: the rate to feed the model; None keeps every frame. Above
            the source rate every frame is kept (`fps` then says the real rate).
        max_frames: stop after this many decoded source frames.
        prefetch: decode up to this many kept frames ahead in a background thread
            (OpenCV decodes without the GIL, so decoding overlaps the model); 0
            decodes in the caller's thread. Memory holds at most
            ``prefetch + 2`` frames either way.

    Attributes:
        source_fps: the rate the file declares (`DEFAULT_FPS` if it declares
            none; `source_fps_declared` says which).
        fps: the effective rate of the yielded frames.
        declared_frames: the frame count the container declares (None if none).
        frame_size: (H, W) of the source frames.
        decoded: source frames decoded so far; yielded: frames yielded so far.

    Raises:
        FileNotFoundError, VideoDecodeError: a missing, empty or corrupt file,
            a camera that does not open, or a frame size that changes midway.
    """

    def __init__(self, source, target_fps=None, max_frames=None, prefetch=0):
        if target_fps is not None and not target_fps > 0:
            raise ValueError(f"target_fps is {target_fps!r}; expected a rate > 0 (or None).")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames is {max_frames!r}; expected >= 1 (or None).")
        self.is_camera = isinstance(source, int) and not isinstance(source, bool)
        if self.is_camera:
            self.name = f"camera {source}"
            self.capture = cv2.VideoCapture(source)
            if not self.capture.isOpened():
                self.capture.release()
                raise video_io.VideoDecodeError(f"No camera at index {source} (OpenCV could not "
                                                "open it).")
        else:
            self.name = os.fspath(source)
            self.capture = video_io.open_video(self.name)
        fps = video_io.declared_fps(self.capture)
        self.source_fps_declared = fps > 0
        self.source_fps = fps or DEFAULT_FPS
        self.target_fps = target_fps
        self.fps = min(target_fps, self.source_fps) if target_fps else self.source_fps
        count = 0 if self.is_camera else video_io.declared_frame_count(self.capture)
        self.declared_frames = count or None
        self.frame_size = (int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                           int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
        self.max_frames = max_frames
        self.prefetch = int(prefetch)
        self.decoded = 0
        self.yielded = 0
        self._started = False

    def expected_frames(self):
        """Frames the iterator will yield if the container's count is right (None if unknown)."""
        if self.declared_frames is None:
            return None
        total = self.declared_frames
        if self.max_frames is not None:
            total = min(total, self.max_frames)
        if not self.target_fps or self.target_fps >= self.source_fps:
            return total
        # Slots hit by frames 0 .. total-1.
        return math.floor((total - 1) / self.source_fps * self.target_fps + 1e-9) + 1

    def ended_early(self):
        """True when the file ended before the frame count its container declares."""
        if self.is_camera or self.declared_frames is None:
            return False
        limit = self.declared_frames if self.max_frames is None else min(self.declared_frames,
                                                                         self.max_frames)
        return self.decoded < limit

    def __iter__(self):
        if self._started:
            raise RuntimeError(f"{self.name}: VideoFrames is a one-pass iterator; open it again.")
        self._started = True
        return self._prefetched() if self.prefetch > 0 else self._frames()

    def _prefetched(self):
        """`_frames` run in a background thread, through a queue of `prefetch` frames."""
        frames = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        end = object()

        def put(item):
            while not stop.is_set():
                try:
                    frames.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def decode():
            try:
                for frame in self._frames():
                    if not put(frame):
                        return
                put(end)
            except BaseException as error:  # Re-raised in the consumer's thread.
                put(error)

        worker = threading.Thread(target=decode, name=f"decode {self.name}", daemon=True)
        worker.start()
        try:
            while True:
                item = frames.get()
                if item is end:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join()
            self.close()

    def _frames(self):
        slot = None
        shape = None
        try:
            while self.max_frames is None or self.decoded < self.max_frames:
                if not self.capture.grab():
                    break
                index = self.decoded
                self.decoded += 1
                keep, slot_now = keeps_frame(index, self.source_fps, self.target_fps, slot)
                if not keep:
                    continue
                slot = slot_now
                ok, frame_bgr = self.capture.retrieve()
                if not ok:
                    break
                if shape is not None and frame_bgr.shape != shape:
                    raise video_io.VideoDecodeError(
                        f"Video {self.name!r} changes frame size at frame {index}: "
                        f"{frame_bgr.shape} after {shape}.")
                shape = frame_bgr.shape
                self.frame_size = shape[:2]
                self.yielded += 1
                yield Frame(index, index / self.source_fps, frame_bgr)
        finally:
            self.close()

    def close(self):
        self.capture.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def short_side_size(height, width, min_image_size):
    """(new_height, new_width) with the short side `min_image_size`, rounded half up.

    The same integers as `movinet_tf.data.preprocess.short_side_size` (TF).
    """
    short = min(height, width)
    if height <= width:
        return min_image_size, (width * min_image_size + short // 2) // short
    return (height * min_image_size + short // 2) // short, min_image_size


def preprocess_frame(frame, contract, bgr=False):
    """One uint8 RGB frame `[H, W, 3]` -> the model input of `contract`, float32 `[h, w, 3]`.

    Short side to ``contract.min_image_size`` (bilinear), centre crop of
    ``contract.image_size``, then scaled to ``contract.value_range``. With
    ``bgr=True`` the frame is OpenCV's BGR and only the small crop is reordered
    to RGB (resizing is per channel, so the result is the same).

    Raises:
        TypeError: if `frame` is not uint8.
        ValueError: if it is not `[H, W, 3]`.
    """
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise TypeError(f"frame must be uint8 RGB; got dtype {frame.dtype}.")
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"frame must be [H, W, 3]; got shape {frame.shape}.")
    crop_height, crop_width = contract.image_size
    height, width = frame.shape[:2]
    new_height, new_width = short_side_size(height, width, contract.min_image_size)
    new_height, new_width = max(new_height, crop_height), max(new_width, crop_width)
    if (new_height, new_width) != (height, width):
        frame = cv2.resize(frame, (new_width, new_height), interpolation=cv2.INTER_LINEAR)
    top = (new_height - crop_height) // 2
    left = (new_width - crop_width) // 2
    crop = frame[top:top + crop_height, left:left + crop_width]
    if bgr:
        crop = crop[..., ::-1]
    low, high = contract.value_range
    return crop.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
