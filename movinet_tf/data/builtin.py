"""The builtin dataset: seeded synthetic actions that need temporal order.

Ten classes in five pairs. The second class of each pair is the first one played
backwards: ``render_clip(2k + 1, seed)`` is exactly ``render_clip(2k, seed)``
reversed in time. Each motion is periodic with a random phase (positions wrap
around the frame, the size and opacity ramps are sawtooths), so at every frame
index the distribution of what a frame shows is the same for both classes of a
pair: no single frame tells them apart, only the order of frames does.

========  =============  ==============  =======================================
label     class          pair partner    what the actor does
========  =============  ==============  =======================================
0 / 1     move_right     move_left       slides horizontally, wrapping around
2 / 3     move_down      move_up         slides vertically, wrapping around
4 / 5     rotate_cw      rotate_ccw      spins in place (asymmetric shape)
6 / 7     grow           shrink          log-size sawtooth, 0.45x..1.4x
8 / 9     fade_in        fade_out        opacity sawtooth, 0.1..1
========  =============  ==============  =======================================

Every clip has a textured random background, 1-3 small distractor shapes
drifting in random directions, random actor shape/colour/size/speed/phase and
per-frame pixel noise. A horizontal flip turns move_right into move_left and
rotate_cw into rotate_ccw; `FLIP_LABEL_MAP` says so, and the pipeline relabels
flipped clips with it.

The videos are written once as real mp4 files (OpenCV, ``mp4v``), so training
reads them through the same decoder as user videos:
``<root>/<split>/<class>/<class>_<index>.mp4`` plus ``<root>/manifest.json``.
The root defaults to ``~/.cache/movinet_tf/builtin/<hash of the parameters>``
(``$MOVINET_CACHE`` replaces ``~/.cache/movinet_tf``: the one cache folder, which
the CI and the Android build scripts use too); it is generated in a
temporary folder and renamed into place, and re-used when present.
"""
import hashlib
import json
import os
import shutil
import tempfile
import time

import cv2
import numpy as np
from absl import logging

from movinet_tf import atomic_io
from movinet_tf.data import video_io

CLASS_NAMES = ("move_right", "move_left", "move_down", "move_up", "rotate_cw", "rotate_ccw",
               "grow", "shrink", "fade_in", "fade_out")
# FLIP_LABEL_MAP[label] is the label of the left-right mirrored clip.
FLIP_LABEL_MAP = (1, 0, 2, 3, 5, 4, 6, 7, 8, 9)
SPLITS = ("train", "val")
FPS = 25.0
GENERATOR_VERSION = 2
MANIFEST = "manifest.json"

# Actor outlines in unit coordinates (x right, y down), none rotation-symmetric.
_SHAPES = (
    np.array([(0.0, -1.0), (0.6, 0.7), (-0.6, 0.7)]),                       # tall triangle
    np.array([(-0.7, -1.0), (-0.2, -1.0), (-0.2, 0.5), (0.7, 0.5), (0.7, 1.0),
              (-0.7, 1.0)]),                                                # L
    np.array([(0.0, -1.0), (0.7, -0.2), (0.25, -0.2), (0.25, 1.0), (-0.25, 1.0),
              (-0.25, -0.2), (-0.7, -0.2)]),                                # arrow
    np.array([(-0.8, -0.6), (0.8, -0.6), (0.8, 0.6), (0.2, 0.6), (0.0, 0.1), (-0.2, 0.6),
              (-0.8, 0.6)]),                                                # notched box
)
_SUBPIXEL_BITS = 4


def _background(rng, size):
    """A static colour texture: coarse + fine random blobs, float32 [S, S, 3] in 0..255."""
    base = rng.uniform(40, 215, size=3)
    coarse = cv2.resize(rng.uniform(-60, 60, (4, 4, 3)).astype(np.float32), (size, size),
                        interpolation=cv2.INTER_CUBIC)
    fine_cells = max(size // 4, 2)
    fine = cv2.resize(rng.uniform(-25, 25, (fine_cells, fine_cells, 3)).astype(np.float32),
                      (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(base + coarse + fine, 0, 255).astype(np.float32), base


def _actor_colour(rng, background_mean):
    """A colour whose brightness differs clearly from the background's."""
    colour = rng.uniform(0, 255, size=3)
    if abs(colour.mean() - background_mean.mean()) < 70:
        colour = np.where(background_mean.mean() > 127, colour * 0.3, 255 - (255 - colour) * 0.3)
    return colour


def _fill_polygon(frame, points, colour, offsets):
    """Draws `points` [N, 2] (anti-aliased, in place) at each (dx, dy) offset that shows."""
    size = frame.shape[0]
    scale = 1 << _SUBPIXEL_BITS
    colour = tuple(float(c) for c in colour)
    low, high = points.min(axis=0), points.max(axis=0)
    for dx, dy in offsets:
        if high[0] + dx < -1 or low[0] + dx > size or high[1] + dy < -1 or low[1] + dy > size:
            continue
        shifted = np.round((points + (dx, dy)) * scale).astype(np.int32)
        cv2.fillPoly(frame, [shifted], colour, lineType=cv2.LINE_AA, shift=_SUBPIXEL_BITS)


def _draw_motion(rng, pair, num_frames, size):
    """Per-frame actor poses of a pair's forward class.

    Returns:
        dict of float arrays `[num_frames]`: x, y, angle (radians, clockwise on
        screen), scale and opacity; plus `wrap` (bool) for the sliding pairs.
    """
    unit = size / 64.0
    t = np.arange(num_frames, dtype=np.float64)
    ones = np.ones(num_frames)
    radius = rng.uniform(10.0, 14.0) * unit
    angle0 = rng.uniform(0, 2 * np.pi)
    margin = 1.4 * radius
    x0, y0 = rng.uniform(margin, size - margin, size=2)
    pose = {"x": x0 * ones, "y": y0 * ones, "angle": angle0 * ones, "scale": ones.copy(),
            "opacity": ones.copy(), "radius": radius, "wrap": False}
    if pair in (0, 1):                     # slide right / down with wrap-around
        speed = rng.uniform(1.0, 2.5) * unit
        start = rng.uniform(0, size)
        key = "x" if pair == 0 else "y"
        pose[key] = np.mod(start + speed * t, size)
        pose["wrap"] = True
    elif pair == 2:                        # spin clockwise
        pose["angle"] = angle0 + np.deg2rad(rng.uniform(6.0, 14.0)) * t
    elif pair == 3:                        # grow: log-size sawtooth
        period = rng.uniform(20.0, 40.0)
        phase = np.mod(rng.uniform(0, 1) + t / period, 1.0)
        pose["scale"] = np.exp(np.log(0.45) + phase * np.log(1.4 / 0.45))
    elif pair == 4:                        # fade in: opacity sawtooth
        period = rng.uniform(20.0, 40.0)
        phase = np.mod(rng.uniform(0, 1) + t / period, 1.0)
        pose["opacity"] = 0.1 + 0.9 * phase
    else:
        raise ValueError(f"pair index {pair} out of range; expected 0..4.")
    return pose


def render_clip(label, seed, num_frames=48, size=64, return_pose=False):
    """Renders one builtin clip in memory.

    Args:
        label: class index in ``[0, 10)`` (see `CLASS_NAMES`).
        seed: int or sequence of ints for `numpy.random.default_rng`. Both
            classes of a pair draw the same scene from the same seed; the odd one
            plays it backwards.
        num_frames: T.
        size: frame height and width.
        return_pose: also return the actor's per-frame pose (for tests).

    Returns:
        uint8 RGB `[T, size, size, 3]`; with `return_pose`, `(frames, pose)` where
        pose maps x, y, angle, scale, opacity to float arrays `[T]` (in the
        returned frame order).
    """
    if not 0 <= label < len(CLASS_NAMES):
        raise ValueError(f"label {label} out of range; expected 0..{len(CLASS_NAMES) - 1}.")
    if num_frames < 1 or size < 16:
        raise ValueError(f"num_frames ({num_frames}) must be >= 1 and size ({size}) >= 16.")
    rng = np.random.default_rng(seed)
    background, background_mean = _background(rng, size)
    shape = _SHAPES[rng.integers(len(_SHAPES))]
    colour = _actor_colour(rng, background_mean)
    pose = _draw_motion(rng, label // 2, num_frames, size)

    num_distractors = int(rng.integers(1, 4))
    d_pos = rng.uniform(0, size, (num_distractors, 2))
    d_heading = rng.uniform(0, 2 * np.pi, num_distractors)
    d_speed = rng.uniform(0.3, 1.0, num_distractors) * size / 64.0
    d_vel = np.stack([np.cos(d_heading), np.sin(d_heading)], -1) * d_speed[:, None]
    d_radius = rng.uniform(1.5, 3.0, num_distractors) * size / 64.0
    d_square = rng.integers(0, 2, num_distractors).astype(bool)
    d_colour = rng.uniform(0, 255, (num_distractors, 3))
    # Per-frame sensor noise, drawn from a small bank of noise images (cheaper to draw).
    noise_bank = np.round(rng.standard_normal((8, size, size, 3), dtype=np.float32) * 3.0)
    noise = noise_bank.astype(np.int16)[rng.integers(0, 8, num_frames)]

    wrap = [(dx, dy) for dx in (-size, 0, size) for dy in (-size, 0, size)]
    square = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], np.float64)
    disc = np.stack([np.cos(np.linspace(0, 2 * np.pi, 12, endpoint=False)),
                     np.sin(np.linspace(0, 2 * np.pi, 12, endpoint=False))], -1)
    background = background.astype(np.uint8)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for t in range(num_frames):
        frame = background.copy()
        for i in range(num_distractors):
            center = np.mod(d_pos[i] + d_vel[i] * t, size)
            outline = (square if d_square[i] else disc) * d_radius[i] + center
            _fill_polygon(frame, outline, d_colour[i], wrap)
        cos, sin = np.cos(pose["angle"][t]), np.sin(pose["angle"][t])
        rotation = np.array([[cos, -sin], [sin, cos]])
        outline = (shape @ rotation.T) * pose["radius"] * pose["scale"][t]
        outline = outline + (pose["x"][t], pose["y"][t])
        offsets = wrap if pose["wrap"] else [(0, 0)]
        opacity = float(pose["opacity"][t])
        if opacity < 1.0:
            layer = frame.copy()
            _fill_polygon(layer, outline, colour, offsets)
            frame = cv2.addWeighted(layer, opacity, frame, 1.0 - opacity, 0.0)
        else:
            _fill_polygon(frame, outline, colour, offsets)
        frames[t] = frame
    frames = np.clip(frames + noise, 0, 255).astype(np.uint8)
    reverse = label % 2 == 1
    if reverse:
        frames = frames[::-1].copy()
    if not return_pose:
        return frames
    ordered = {k: (v[::-1] if reverse else v) for k, v in pose.items()
               if k in ("x", "y", "angle", "scale", "opacity")}
    return frames, ordered


def builtin_params(cfg):
    """The generator parameters of a `DataConfig`, as a plain dict (hashed into the cache name)."""
    return {"generator_version": GENERATOR_VERSION, "seed": int(cfg.builtin_seed),
            "train_per_class": int(cfg.builtin_train_per_class),
            "val_per_class": int(cfg.builtin_val_per_class),
            "num_frames": int(cfg.builtin_video_frames), "size": int(cfg.builtin_video_size)}


def cache_dir():
    """The project's cache folder: ``$MOVINET_CACHE``, default ``~/.cache/movinet_tf``.

    ``$MOVINET_TF_CACHE``, the name of older versions, is still read (with a
    warning) when ``$MOVINET_CACHE`` is not set.
    """
    cache = os.environ.get("MOVINET_CACHE")
    if not cache and os.environ.get("MOVINET_TF_CACHE"):
        cache = os.environ["MOVINET_TF_CACHE"]
        logging.warning("MOVINET_TF_CACHE is deprecated; set MOVINET_CACHE=%s instead.", cache)
    return cache or os.path.join(os.path.expanduser("~"), ".cache", "movinet_tf")


def default_root(params):
    """``$MOVINET_CACHE/builtin/<hash>`` (see `cache_dir`)."""
    cache = cache_dir()
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return os.path.join(cache, "builtin", digest)


def _split_count(params, split):
    return params["train_per_class"] if split == "train" else params["val_per_class"]


def video_path(root, split, label, index):
    """Where video `index` of class `label` in `split` lives under `root`."""
    name = CLASS_NAMES[label]
    return os.path.join(root, split, name, f"{name}_{index:04d}.mp4")


def generate(root, params):
    """Writes the whole dataset into a new or empty folder `root` (atomically).

    Returns:
        The manifest, a dict.

    Raises:
        ValueError: if `root` already exists and is not an empty folder.
    """
    if os.path.exists(root) and not (os.path.isdir(root) and not os.listdir(root)):
        raise ValueError(f"Builtin dataset folder {root!r} already exists and is not empty.")
    parent = os.path.dirname(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    temp_root = tempfile.mkdtemp(prefix=os.path.basename(root) + ".tmp-", dir=parent)
    start = time.perf_counter()
    try:
        for split_id, split in enumerate(SPLITS):
            for label, name in enumerate(CLASS_NAMES):
                os.makedirs(os.path.join(temp_root, split, name))
                for index in range(_split_count(params, split)):
                    frames = render_clip(label, [params["seed"], split_id, label, index],
                                         params["num_frames"], params["size"])
                    video_io.write_video(video_path(temp_root, split, label, index), frames, FPS)
        seconds = time.perf_counter() - start
        manifest = {"params": params, "classes": list(CLASS_NAMES), "fps": FPS,
                    "splits": {s: _split_count(params, s) * len(CLASS_NAMES) for s in SPLITS},
                    "generation_seconds": round(seconds, 2)}
        with open(os.path.join(temp_root, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
        atomic_io.fix_tree_modes(temp_root)  # mkdtemp made it 0700; follow the umask.
        try:
            os.rename(temp_root, root)
        except OSError:
            if not os.path.isfile(os.path.join(root, MANIFEST)):
                raise
            # Another process finished the same dataset first; theirs is identical.
            shutil.rmtree(temp_root)
    except BaseException:
        shutil.rmtree(temp_root, ignore_errors=True)
        raise
    logging.info("Generated the builtin dataset (%s videos) in %s in %.1f s.",
                 sum(manifest["splits"].values()), root, seconds)
    return manifest


def ensure_builtin(cfg):
    """Returns the root folder of the builtin dataset for `cfg`, generating it if missing.

    Args:
        cfg: a `DataConfig`; `cfg.path` ('' = the cache) is the dataset folder.

    Raises:
        ValueError: if the folder exists but holds another dataset (different
            generator parameters) or no manifest.
    """
    params = builtin_params(cfg)
    root = cfg.path.replace("{split}", "") if cfg.path else default_root(params)
    manifest_path = os.path.join(root, MANIFEST)
    if not os.path.exists(root) or (os.path.isdir(root) and not os.listdir(root)):
        generate(root, params)
        return root
    if not os.path.isfile(manifest_path):
        raise ValueError(f"Builtin dataset folder {root!r} exists but has no {MANIFEST}; "
                         "expected a folder generated by movinet_tf (or a new path).")
    with open(manifest_path) as f:
        manifest = json.load(f)
    if manifest.get("params") != params:
        raise ValueError(f"Builtin dataset folder {root!r} was generated with "
                         f"{manifest.get('params')}, expected {params}; point data.path "
                         "elsewhere or delete the folder.")
    return root


def list_videos(root, split):
    """`(paths, labels)` of one split of a generated dataset, in class then index order."""
    if split not in SPLITS:
        raise ValueError(f"The builtin dataset has splits {list(SPLITS)}; got {split!r}.")
    with open(os.path.join(root, MANIFEST)) as f:
        params = json.load(f)["params"]
    paths, labels = [], []
    for label in range(len(CLASS_NAMES)):
        for index in range(_split_count(params, split)):
            paths.append(video_path(root, split, label, index))
            labels.append(label)
    return paths, labels
