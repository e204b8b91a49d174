"""The parts of `python -m movinet_tf.train`, one concern per module.

`movinet_tf/train.py` is the flat main that reads top to bottom; it uses:

* `distribution`: logical devices, the `tf.distribute.Strategy`, chief/worker folders.
* `optimizer`: the learning-rate schedule and the optimizer of ``cfg.train``.
* `state`: the model, optimizer and data-position counters a checkpoint holds;
  resume, and initialisation from ``train.init_checkpoint``.
* `inputs`: checks that the configured data exist, and the resumable training iterator.
* `step`: the distributed train step and the divergence guard.
* `summaries`: TensorBoard scalars and the progress bar's log window.
* `subclips`: exact-gradient training on a clip in sub-clips (``train.subclips``).
* `evaluation`: clip, multi-clip and streaming evaluation.
* `ensemble`: training and evaluating temporal ensembles.

Everything here sits above `movinet_tf.checkpoints`, `movinet_tf.config` and
`movinet_tf.data`, and below `movinet_tf.train`.
"""
