"""Evaluation of video classifiers: single clip, multi-clip and streaming.

Three ways to score the same eval split, run by `evaluate` and printed side by
side by `format_results`:

* ``clip``: one clip and one crop per video, one forward pass.
* ``multi_clip``: ``data.eval_num_clips`` x ``data.eval_num_crops`` views per
  video, their logits averaged. The data pipeline gives these as a batch of
  ``[B, V, T, H, W, 3]`` videos (V views per video).
* ``stream``: a stream model fed one frame per call, carrying its states; the
  prediction after every second of video is scored, so you see how accuracy
  grows as the model watches. After the last frame the stream model has seen
  the whole clip, so its final accuracy equals ``clip`` accuracy.

Seconds are converted to frames with ``data.video_fps / data.temporal_stride``
(model frames per second of source video).
"""
import dataclasses
import math

import numpy as np
import tensorflow as tf
from absl import logging

from movinet_tf import data as data_lib


def topk_accuracy(logits, labels, k):
    """Fraction of rows whose label is among the k largest logits, ties and NaN counted as misses.

    A row is a hit when its label's logit is strictly larger than all but at
    most k-1 of the other logits and every logit of the row is finite: a
    diverged model (NaN or inf logits) or a constant one (all logits tied)
    scores 0, not 1.

    Args:
        logits: [N, C] array.
        labels: [N] int array.
        k: how many top classes count as a hit (capped at C).

    Returns:
        A float in [0, 1] (0 for N == 0).
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels).astype(np.int64)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"topk_accuracy expects logits [N, C] and labels [N], got {logits.shape} and {labels.shape}.")
    if len(labels) == 0:
        return 0.0
    k = min(k, logits.shape[1])
    rows = np.arange(len(labels))
    label_logits = logits[rows, labels]
    # Other classes scoring at least as high as the label: a tie is no win.
    at_least = (logits >= label_logits[:, None]).sum(axis=1) - 1
    finite = np.isfinite(logits).all(axis=1)
    return float(np.mean(finite & (at_least < k)))


def _metrics(logits, labels):
    return {"top1": topk_accuracy(logits, labels, 1), "top5": topk_accuracy(logits, labels, 5),
            "videos": int(len(labels))}


def _split_views(video):
    """[B, V, T, H, W, 3] -> ([B*V, T, H, W, 3], V); [B, T, H, W, 3] -> (video, 1)."""
    if video.shape.rank == 6:
        shape = tf.shape(video)
        views = int(video.shape[1]) if video.shape[1] is not None else int(shape[1])
        return tf.reshape(video, tf.concat([[-1], shape[2:]], 0)), views
    if video.shape.rank != 5:
        raise ValueError(
            f"eval videos must be [B, T, H, W, 3] or [B, V, T, H, W, 3], got shape {video.shape}.")
    return video, 1


def _batches(dataset, max_batches):
    for index, batch in enumerate(dataset):
        if max_batches and index >= max_batches:
            return
        if isinstance(batch, dict):
            yield batch["video"], batch["label"]
        else:
            yield batch[0], batch[1]


def predict_clips(model, dataset, max_batches=0, stream=False):
    """Runs `model` over `dataset`, averaging logits over views per video.

    Args:
        model: a MovinetClassifier (or any Keras model video -> logits).
        dataset: yields (video, label) with video [B, T, H, W, 3] or
            [B, V, T, H, W, 3] and label [B].
        max_batches: stop after this many batches (0 = all).
        stream: also feed every clip frame by frame with states (needs a
            stream model and V == 1) and keep the logits after each frame.

    Returns:
        dict with ``logits`` [N, C], ``labels`` [N] and, when `stream`,
        ``frame_logits`` [N, T, C] (logits after frames 1..T).
    """
    @tf.function(reduce_retracing=True)
    def forward(video):
        return tf.cast(model(video, training=False), tf.float32)

    @tf.function(reduce_retracing=True)
    def stream_step(states, frame):
        logits, states = model({**states, "image": frame}, training=False)
        return tf.cast(logits, tf.float32), states

    all_logits, all_labels, all_frame_logits = [], [], []
    for video, labels in _batches(dataset, max_batches):
        flat, views = _split_views(video)
        logits = forward(flat).numpy()
        logits = logits.reshape(-1, views, logits.shape[-1]).mean(axis=1)
        all_logits.append(logits)
        all_labels.append(np.asarray(labels).reshape(-1))
        if stream:
            if views != 1:
                raise ValueError(f"streaming evaluation takes one view per video, got {views}.")
            states = model.init_states(flat.shape.as_list())
            frame_logits = []
            for t in range(int(flat.shape[1])):
                step_logits, states = stream_step(states, flat[:, t:t + 1])
                frame_logits.append(step_logits.numpy())
            all_frame_logits.append(np.stack(frame_logits, axis=1))
    if not all_logits:
        raise ValueError("The eval dataset yielded no batches.")
    result = {"logits": np.concatenate(all_logits), "labels": np.concatenate(all_labels)}
    if stream:
        result["frame_logits"] = np.concatenate(all_frame_logits)
    return result


def stream_accuracy_by_second(frame_logits, labels, frames_per_second):
    """Accuracy after each whole second of video, and after the last frame.

    Args:
        frame_logits: [N, T, C] logits after frames 1..T.
        labels: [N].
        frames_per_second: model frames per second of source video
            (video fps / temporal stride).

    Returns:
        A list of dicts ``{seconds, frames, top1, top5}``; the last entry is the
        whole clip (its ``seconds`` may be fractional).
    """
    num_frames = frame_logits.shape[1]
    rows = []
    second = 1
    while True:
        frames = math.ceil(second * frames_per_second - 1e-9)
        if frames >= num_frames:
            break
        rows.append((float(second), frames))
        second += 1
    rows.append((num_frames / frames_per_second, num_frames))
    return [{"seconds": round(seconds, 3), "frames": frames,
             "top1": topk_accuracy(frame_logits[:, frames - 1], labels, 1),
             "top5": topk_accuracy(frame_logits[:, frames - 1], labels, 5)}
            for seconds, frames in rows]


def evaluate(model, cfg):
    """Scores `model` on ``cfg.data.eval_split`` in every mode of ``cfg.eval.modes``.

    Args:
        model: the MovinetClassifier.
        cfg: the `ExperimentConfig`.

    Returns:
        dict mode -> metrics (``top1``, ``top5``, ``videos``, ``views``; the
        ``stream`` entry adds ``per_second``, see `stream_accuracy_by_second`).
    """

    modes = list(cfg.eval.modes)
    data_cfg = cfg.data
    if cfg.eval.num_frames:
        data_cfg = dataclasses.replace(data_cfg, num_frames=cfg.eval.num_frames)
    results = {}
    if "clip" in modes or "stream" in modes:
        clip_cfg = dataclasses.replace(data_cfg, eval_num_clips=1, eval_num_crops=1)
        dataset = data_lib.build_dataset(clip_cfg, cfg.data.eval_split, training=False)
        logging.info("Evaluating %s on split %r (single clip%s).", model.name, cfg.data.eval_split,
                     " + streaming" if "stream" in modes else "")
        predictions = predict_clips(model, dataset, cfg.eval.max_batches, stream="stream" in modes)
        if "clip" in modes:
            results["clip"] = {**_metrics(predictions["logits"], predictions["labels"]), "views": "1x1"}
        if "stream" in modes:
            fps = cfg.data.video_fps / cfg.data.temporal_stride
            per_second = stream_accuracy_by_second(
                predictions["frame_logits"], predictions["labels"], fps)
            final = predictions["frame_logits"][:, -1]
            results["stream"] = {**_metrics(final, predictions["labels"]), "views": "1x1",
                                 "per_second": per_second}
    if "multi_clip" in modes:
        views = f"{cfg.data.eval_num_clips}x{cfg.data.eval_num_crops}"
        dataset = data_lib.build_dataset(data_cfg, cfg.data.eval_split, training=False)
        logging.info("Evaluating %s on split %r (%s clips x crops).", model.name, cfg.data.eval_split, views)
        predictions = predict_clips(model, dataset, cfg.eval.max_batches)
        results["multi_clip"] = {**_metrics(predictions["logits"], predictions["labels"]),
                                 "views": views}
    return {mode: results[mode] for mode in modes}


def format_results(results):
    """The results of `evaluate` as a text table (modes side by side)."""
    lines = [f"{'mode':<12}{'views':>8}{'videos':>8}{'top1':>9}{'top5':>9}"]
    for mode, metrics in results.items():
        lines.append(f"{mode:<12}{metrics['views']:>8}{metrics['videos']:>8}"
                     f"{metrics['top1']:>9.4f}{metrics['top5']:>9.4f}")
    if "stream" in results:
        lines.append("")
        lines.append("streaming accuracy after each second of video:")
        lines.append(f"{'seconds':>8}{'frames':>8}{'top1':>9}{'top5':>9}")
        for row in results["stream"]["per_second"]:
            lines.append(f"{row['seconds']:>8.2f}{row['frames']:>8}{row['top1']:>9.4f}{row['top5']:>9.4f}")
    return "\n".join(lines)
