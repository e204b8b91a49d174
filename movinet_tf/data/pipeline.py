"""`build_dataset`: one tf.data pipeline for every source.

The path of a video through the pipeline::

    source -> (frames or JPEG bytes, label)        files, TFDS, TFRecords
           -> sample frame indices                 sampling.py (train: random; eval: K clips)
           -> decode / gather those frames         files: decoded only up to the last index
                                                   and only those frames kept (video_io)
           -> train: random crop-resize + flip     preprocess.py
              eval:  short-side resize + crops
           -> batch -> prefetch

Elements:

* training: ``video`` float32 `[B, T, H, W, 3]` in [0, 1], ``label`` int32 `[B]`;
  the last partial batch is dropped.
* evaluation with ``eval_num_clips * eval_num_crops == 1``: the same shapes;
  the last partial batch is kept.
* evaluation with V = ``eval_num_clips * eval_num_crops > 1``: ``video`` is
  `[B, V, T, H, W, 3]`, view ``v = clip * eval_num_crops + crop``; average the
  logits over axis 1 to score a video.

Unreadable video files (missing, empty, corrupt) are logged with their path,
skipped, and counted; when the pass over the files ends, one line reports how
many were skipped, and the optional `DecodeStats` keeps the counts.
"""
import dataclasses
import os
import threading

import cv2
import numpy as np
import tensorflow as tf
from absl import logging

from movinet_tf.data import builtin
from movinet_tf.data import files
from movinet_tf.data import preprocess
from movinet_tf.data import sampling
from movinet_tf.data import tfds_source
from movinet_tf.data import tfrecord
from movinet_tf.data import video_io
from movinet_tf.data.config import validate_config

_FILE_SOURCES = ("builtin", "folder", "csv")


class DecodeStats:
    """Thread-safe counts of decoded and skipped video files.

    Attributes:
        decoded: videos decoded in the current pass.
        skipped: videos skipped in the current pass.
        last_pass: `(decoded, skipped)` of the last finished pass, or None.
        skipped_paths: every path skipped so far (all passes).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.decoded = 0
        self.skipped = 0
        self.last_pass = None
        self.skipped_paths = []

    def record_decoded(self):
        with self._lock:
            self.decoded += 1

    def record_skipped(self, path):
        with self._lock:
            self.skipped += 1
            self.skipped_paths.append(path)

    def end_pass(self, name):
        """Logs and stores the counts of the pass that just ended, then resets them."""
        with self._lock:
            self.last_pass = (self.decoded, self.skipped)
            self.decoded, self.skipped = 0, 0
        decoded, skipped = self.last_pass
        if skipped:
            logging.warning("%s: pass finished; skipped %d unreadable of %d videos.", name,
                            skipped, decoded + skipped)
        else:
            logging.info("%s: pass finished; %d videos decoded, none skipped.", name, decoded)


def _expand_path(cfg):
    """`cfg` with a leading ``~`` of `path` expanded."""
    return dataclasses.replace(cfg, path=os.path.expanduser(cfg.path))


def num_views(cfg):
    """Eval views per video, ``eval_num_clips * eval_num_crops``."""
    return cfg.eval_num_clips * cfg.eval_num_crops


def class_names(cfg):
    """The class names of `cfg`'s source; label i is `class_names(cfg)[i]`.

    TFRecords carry no names, so they get ``"0" .. "N-1"``.
    """
    cfg = _expand_path(validate_config(cfg))
    if cfg.source == "builtin":
        return list(builtin.CLASS_NAMES)
    if cfg.source == "folder":
        return files.folder_class_names(cfg)
    if cfg.source == "csv":
        return files.csv_class_names(cfg)
    if cfg.source == "tfds":
        return tfds_source.class_names(cfg)
    return [str(i) for i in range(cfg.num_classes)]


def _check_num_classes(cfg):
    names = class_names(cfg)
    if len(names) != cfg.num_classes:
        raise ValueError(f"data.num_classes is {cfg.num_classes} but the {cfg.source} source has "
                         f"{len(names)} classes ({names[:5]}{'...' if len(names) > 5 else ''}).")


def _list_file_videos(cfg, split):
    if cfg.source == "builtin":
        root = builtin.ensure_builtin(cfg)
        return builtin.list_videos(root, split)
    if cfg.source == "folder":
        return files.list_folder(cfg, split)
    return files.list_csv(cfg, split)


def _as_path(path):
    """A numpy_function's string argument (bytes, or a 0-d array when eager) as str."""
    if isinstance(path, np.ndarray):
        path = path.item()
    return path.decode() if isinstance(path, bytes) else str(path)


def _probe_file_fn():
    """A numpy function path -> the frame count the container declares (-1: unreadable)."""
    def probe(path):
        path = _as_path(path)
        try:
            return np.int32(video_io.probe_video(path)[0])
        except (OSError, ValueError, cv2.error):
            return np.int32(-1)  # The reader reports it (once) when it fails to open too.
    return probe


def _read_file_fn(stats):
    """A numpy function (path, indices, count) -> (frames, num_decoded, complete, ok).

    Decodes the video only up to its largest needed index and keeps only the
    frames `indices` names (`video_io.read_frames_at`). `complete` is False
    when the video ended before that index, i.e. before the `count` frames its
    container declares; then `num_decoded` is its real length, and the caller
    samples again with it. Failures give ok=False (logged, counted once).
    """
    def read(path, indices, count):
        path = _as_path(path)
        try:
            frames, num_decoded = video_io.read_frames_at(path, indices)
        except (OSError, ValueError, cv2.error) as error:
            logging.warning("Skipping unreadable video %s: %s", path, error)
            stats.record_skipped(path)
            return np.zeros([len(indices), 1, 1, 3], np.uint8), np.int32(0), True, False
        if frames is None:
            if num_decoded >= count:  # Already sampled with the real length: cannot happen.
                stats.record_skipped(path)
                return np.zeros([len(indices), 1, 1, 3], np.uint8), np.int32(0), True, False
            logging.info("Video %s has %d frames, not the %d its container declares.", path,
                         num_decoded, count)
            return np.zeros([len(indices), 1, 1, 3], np.uint8), np.int32(num_decoded), False, True
        stats.record_decoded()
        return frames, np.int32(num_decoded), True, True
    return read


def _make_clip_fns(cfg, training, encoded):
    """The two halves of turning a video into a clip, so that a file source decodes only
    the frames a clip needs:

    * ``indices_fn(num_available, seed)``: the source frame indices, int32 `[M]`;
    * ``views_fn(frames [M, ...], label, seed)``: those frames (or JPEG bytes)
      -> `(video, label)`.
    """
    flip_map = tf.constant(builtin.FLIP_LABEL_MAP, tf.int32) if cfg.source == "builtin" else None
    # Interleaved clips (ensemble members): frames phase, phase + count, ... of a full-rate clip.
    count, phase = cfg.interleave_count, cfg.interleave_index

    def decode(selected):
        return tfrecord.decode_frames(selected) if encoded else selected

    def train_seeds(seed):
        return tf.random.experimental.stateless_split(tf.stack([seed, tf.zeros_like(seed)]), 3)

    def indices_fn(num_available, seed):
        if training:
            return sampling.sample_train_indices(
                train_seeds(seed)[0], num_available, cfg.num_frames * count,
                cfg.temporal_stride // count, cfg.random_stride_range)[phase::count]
        indices = sampling.eval_indices(num_available, cfg.num_frames * count,
                                        cfg.temporal_stride // count,
                                        cfg.eval_num_clips)[:, phase::count]
        return tf.reshape(indices, [-1])

    def views_fn(selected, label, seed):
        clip = decode(selected)
        if training:
            seeds = train_seeds(seed)
            video = preprocess.random_crop_resize(
                clip, seeds[1], cfg.image_size, (cfg.crop_area_min, cfg.crop_area_max),
                (cfg.crop_aspect_min, cfg.crop_aspect_max))
            if cfg.random_flip:
                video, flipped = preprocess.random_flip(video, seeds[2])
                if flip_map is not None:
                    label = tf.where(flipped, tf.gather(flip_map, label), label)
            video = tf.ensure_shape(video, [cfg.num_frames, cfg.image_size, cfg.image_size, 3])
            return video, label
        num_clips, num_crops, t = cfg.eval_num_clips, cfg.eval_num_crops, cfg.num_frames
        clip = tf.ensure_shape(clip, [num_clips * t, None, None, 3])    # [K*T, H, W, 3]
        views = preprocess.eval_crops(clip, cfg.image_size, cfg.min_image_size, num_crops)
        size = cfg.image_size
        views = tf.reshape(views, [num_crops, num_clips, t, size, size, 3])
        views = tf.reshape(tf.transpose(views, [1, 0, 2, 3, 4, 5]),
                           [num_clips * num_crops, t, size, size, 3])
        return (views[0] if num_clips * num_crops == 1 else views), label

    return indices_fn, views_fn


def _make_clip_fn(cfg, training, encoded):
    """(frames or JPEG bytes [N, ...] of the whole video, label, seed) -> (video, label)."""
    indices_fn, views_fn = _make_clip_fns(cfg, training, encoded)

    def clip_fn(frames, label, seed):
        indices = indices_fn(tf.shape(frames)[0], seed)
        return views_fn(tf.gather(frames, indices), label, seed)

    return clip_fn


def _make_file_clip_fn(cfg, training, stats):
    """(path, label, seed) -> (video, label, ok), decoding only the frames the clip needs.

    The indices are sampled with the frame count the container declares; a
    video that turns out shorter is sampled again with its real length, so the
    clip holds the same frames as sampling the fully decoded video would.
    """
    indices_fn, views_fn = _make_clip_fns(cfg, training, encoded=False)
    probe = _probe_file_fn()
    read = _read_file_fn(stats)

    def read_clip(path, num_available, seed):
        indices = indices_fn(num_available, seed)
        frames, num_decoded, complete, ok = tf.numpy_function(
            read, [path, indices, num_available], (tf.uint8, tf.int32, tf.bool, tf.bool),
            stateful=True)
        return tf.ensure_shape(frames, [None, None, None, 3]), num_decoded, complete, ok

    def clip_fn(path, label, seed):
        declared = tf.numpy_function(probe, [path], tf.int32, stateful=True)
        num_available = tf.maximum(tf.ensure_shape(declared, []), 1)
        frames, num_decoded, complete, ok = read_clip(path, num_available, seed)

        def read_again():
            again, _, _, ok_again = read_clip(path, tf.maximum(num_decoded, 1), seed)
            return again, ok_again

        frames, ok = tf.cond(tf.ensure_shape(complete, []), lambda: (frames, ok), read_again)
        video, label = views_fn(frames, label, seed)
        return video, label, tf.ensure_shape(ok, [])

    return clip_fn


def _check_label(label, num_classes):
    label = tf.cast(label, tf.int32)
    tf.debugging.assert_less(label, num_classes,
                             message=f"label out of range; expected < data.num_classes "
                                     f"({num_classes})")
    tf.debugging.assert_non_negative(label, message="label is negative")
    return label


def build_dataset(cfg, split, training, stats=None, seed=None):
    """Builds the batched `(video, label)` pipeline of one split.

    Args:
        cfg: a `DataConfig`.
        split: split name, usually `cfg.train_split` or `cfg.eval_split`.
        training: random clips with augmentation and shuffling (True), or the
            deterministic eval views (False).
        stats: optional `DecodeStats` that collects decoded/skipped counts of
            file sources.
        seed: the int that seeds this pass's shuffles and augmentation (default
            ``cfg.seed``). Give each pass its own (the trainer mixes in the epoch):
            a seed here, unlike `tf.random.set_seed`, does not make TensorFlow
            re-instantiate traced functions such as the train step.

    Returns:
        A `tf.data.Dataset` of `(video, label)`; see the module docstring for
        the shapes. One iteration is one pass over the split (no repeat).

    Raises:
        ValueError: inconsistent config, unknown split, or a class count that
            differs from `cfg.num_classes`.
        FileNotFoundError: a missing root folder, csv file or TFRecord glob.
    """
    cfg = _expand_path(validate_config(cfg))
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty string, got {split!r}.")
    if cfg.source != "tfrecord":
        _check_num_classes(cfg)
    autotune = tf.data.AUTOTUNE
    parallel = autotune if cfg.num_parallel_calls == -1 else cfg.num_parallel_calls
    clip_fn = _make_clip_fn(cfg, training, encoded=cfg.source == "tfrecord")
    seed = cfg.seed if seed is None else int(seed)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    name = f"{cfg.source}/{split}"

    if cfg.source in _FILE_SOURCES:
        stats = stats if stats is not None else DecodeStats()
        paths, labels = _list_file_videos(cfg, split)
        logging.info("%s: %d videos.", name, len(paths))
        items = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int32)))
        if training:
            items = items.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
        file_clip_fn = _make_file_clip_fn(cfg, training, stats)

        def load(item, seed):
            path, label = item
            return file_clip_fn(path, _check_label(label, cfg.num_classes), seed)

        videos = tf.data.Dataset.zip((items, seeds)).map(load, num_parallel_calls=parallel)
        video_spec = videos.element_spec[0]

        def end_of_pass(_):
            done = tf.numpy_function(lambda: stats.end_pass(name) or False, [], tf.bool,
                                     stateful=True)
            return tf.zeros(video_spec.shape, video_spec.dtype), 0, tf.ensure_shape(done, [])

        # Runs once the parallel map is exhausted, i.e. after every video was tried.
        videos = videos.concatenate(tf.data.Dataset.range(1).map(end_of_pass))
        videos = videos.filter(lambda video, label, ok: ok)
        videos = videos.map(lambda video, label, ok: (video, label))
    else:
        if cfg.source == "tfds":
            records = tfds_source.load(cfg, split, training, seed)
        else:
            record_files = tfrecord.list_files(cfg.path.replace("{split}", split))
            records = tf.data.Dataset.from_tensor_slices(record_files)
            if training:
                records = records.shuffle(len(record_files), seed=seed)
            records = records.interleave(tf.data.TFRecordDataset, cycle_length=autotune,
                                         num_parallel_calls=autotune, deterministic=not training)
            records = records.map(tfrecord.parse_sequence_example, num_parallel_calls=parallel)
        if training:
            records = records.shuffle(cfg.shuffle_buffer, seed=seed,
                                      reshuffle_each_iteration=True)

        def load_record(record, seed):
            frames, label = record
            return clip_fn(frames, _check_label(label, cfg.num_classes), seed)

        videos = tf.data.Dataset.zip((records, seeds)).map(load_record,
                                                           num_parallel_calls=parallel)
    batch_size = cfg.batch_size if training else cfg.eval_batch_size
    batches = videos.batch(batch_size, drop_remainder=training).prefetch(autotune)
    return batches.with_options(_options())


def _options():
    """The pipeline's `tf.data.Options`: tf.data's autotuning thread switched off.

    That thread wakes at intervals that double while an iterator lives, up to a
    minute, and destroying the iterator waits for its next wake-up. Measured on
    the quickstart (one core, a 75-step pass every ~20 s): each finished pass
    then stalled training for 20-40 s, idle, when Python freed its iterator.
    Without the thread no stall remained; the AUTOTUNE parallelism and buffers
    then take TensorFlow's static defaults (one core: 2.4 s instead of 1.8 s to
    decode a pass, against ~15 s of training steps).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options
