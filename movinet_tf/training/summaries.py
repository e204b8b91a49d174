"""TensorBoard scalars and the progress bar of a training run."""
import json
import os
import time

import keras
import tensorflow as tf
from absl import logging
from tensorflow.core.framework import summary_pb2

from movinet_tf import atomic_io

LOSSES = ("loss", "cross_entropy", "regularization")


def write_scalar(tag, value, step):
    """Writes one TensorBoard scalar to the default summary writer.

    TensorBoard itself is not a dependency (tensorflow-cpu does not bring it),
    and `tf.summary.scalar` needs it, so this writes the same event with TF's
    own `tf.summary.write` and the scalars plugin's metadata.
    """
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    metadata.data_class = summary_pb2.DATA_CLASS_SCALAR
    tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=metadata)


class TrainLog:
    """The progress bar and the ``train/*`` TensorBoard scalars, averaged over each log window.

    Losses are shown as means over the current window (Progbar's own means run
    from the first step, which hides how the loss moves). The event file is
    created at the first log, so a run that fails before it leaves no file.

    Args:
        out_dir: the run folder; events go to ``out_dir/train``.
        steps: the last step (the bar's length).
        start_step: the step training starts (or resumes) from.
        log_every: write the scalars every this many steps (and at `steps`).
        chief: only the chief shows a bar and writes events.
    """

    def __init__(self, out_dir, steps, start_step, log_every, chief):
        self._out_dir, self._steps, self._log_every, self._chief = out_dir, steps, log_every, chief
        self._start_step, self._start_time = start_step, time.time()
        self._writer = None
        self._progbar = keras.utils.Progbar(steps, stateful_metrics=["lr", *LOSSES],
                                            verbose=1 if chief else 0)
        self._reset()

    def _reset(self):
        self._window = {"top1": 0.0, "top5": 0.0, "count": 0.0, "steps": 0,
                        **dict.fromkeys(LOSSES, 0.0)}

    def _writer_now(self):
        if self._writer is None:
            self._writer = (tf.summary.create_file_writer(os.path.join(self._out_dir, "train"))
                            if self._chief else tf.summary.create_noop_writer())
        return self._writer

    def update(self, step, stats, learning_rate):
        """Adds one step's `stats` (see `step.make_train_step`); logs at the window's end."""
        window = self._window
        for key in ("top1", "top5", "count", *LOSSES):
            window[key] += float(stats[key])
        window["steps"] += 1
        shown = [(key, window[key] / window["steps"]) for key in LOSSES]
        if step % self._log_every == 0 or step == self._steps:
            count = max(window["count"], 1.0)
            elapsed = time.time() - self._start_time
            summary = {**dict(shown), "top1": window["top1"] / count,
                       "top5": window["top5"] / count, "learning_rate": learning_rate,
                       "steps_per_second": (step - self._start_step) / max(elapsed, 1e-9)}
            with self._writer_now().as_default():
                for key, value in summary.items():
                    write_scalar(f"train/{key}", value, step)
            self._writer_now().flush()
            self._reset()
        self._progbar.update(step, values=[*shown, ("lr", learning_rate)])


def save_eval(out_dir, step, results):
    """Writes eval results as ``eval/<mode>/top1|top5`` scalars and ``eval_step<step>.json``.

    Results that cannot be saved (a read-only run folder) are logged and
    dropped: evaluating a finished run needs no write access.
    """
    try:
        writer = tf.summary.create_file_writer(os.path.join(out_dir, "eval"))
        with writer.as_default():
            for mode, metrics in results.items():
                write_scalar(f"eval/{mode}/top1", metrics["top1"], step)
                write_scalar(f"eval/{mode}/top5", metrics["top5"], step)
        writer.flush()
        atomic_io.write_text(os.path.join(out_dir, f"eval_step{step}.json"),
                             json.dumps({"step": step, **results}, indent=2))
    except (OSError, tf.errors.OpError) as error:
        logging.warning("Could not save the eval results in %s: %s", out_dir,
                        str(error).strip().splitlines()[0])
