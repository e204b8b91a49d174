"""Why a trained classifier misses: train vs val accuracy, confusions, BatchNorm statistics.

    python benchmarks/train_diagnostics.py --model_dir runs/quickstart
    python benchmarks/train_diagnostics.py --model_dir runs/quickstart --checkpoint runs/quickstart/ckpt-400

Scores the run's checkpoint on the training and the validation split with the
evaluation view (one centre clip per video), twice: with BatchNorm's moving
statistics as trained, then after `movinet_tf.training.bn_calibration.recalibrate` over
`--bn_batches` augmented training batches ("precise BN"). For each it prints
top-1 on both splits (train below val: underfit; far above: overfit), how
many errors stay within a class pair of the builtin set (the partner played
backwards: an error of temporal order) and, for the validation split, the
confusion matrix (rows: true class, columns: predicted).
"""
import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A trained run folder (with config.yaml).")
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix (default: the run's latest).")
flags.DEFINE_integer("bn_batches", 25, "Training batches for the BatchNorm recalibration.")


def _score(model, cfg, split):
    import numpy as np
    from movinet_tf import data as data_lib
    from movinet_tf.training import evaluation
    clip_cfg = dataclasses.replace(cfg.data, eval_num_clips=1, eval_num_crops=1)
    predictions = evaluation.predict_clips(
        model, data_lib.build_dataset(clip_cfg, split, training=False))
    predicted, labels = predictions["logits"].argmax(1), predictions["labels"]
    wrong = predicted != labels
    within_pair = int(np.sum(wrong & (predicted // 2 == labels // 2)))
    confusion = np.zeros((cfg.data.num_classes,) * 2, int)
    np.add.at(confusion, (labels, predicted), 1)
    return {"top1": float(np.mean(~wrong)), "errors": int(wrong.sum()),
            "within_pair": within_pair, "confusion": confusion}


def _report(title, model, cfg):
    print(f"\n{title}")
    print(f"{'split':<8}{'videos':>8}{'top1':>9}{'errors':>8}{'in pair':>9}{'across':>8}")
    scores = {}
    for split in (cfg.data.train_split, cfg.data.eval_split):
        s = scores[split] = _score(model, cfg, split)
        print(f"{split:<8}{s['confusion'].sum():>8}{s['top1']:>9.4f}{s['errors']:>8}"
              f"{s['within_pair']:>9}{s['errors'] - s['within_pair']:>8}", flush=True)
    print(f"confusion on {cfg.data.eval_split} (rows true, columns predicted):")
    for row in scores[cfg.data.eval_split]["confusion"]:
        print(" ".join(f"{v:3d}" for v in row))


def main(argv):
    del argv
    if not FLAGS.model_dir:
        raise app.UsageError("--model_dir is required.")
    from movinet_tf import checkpoints
    from movinet_tf.training import bn_calibration
    cfg, model, restored = checkpoints.load_run(FLAGS.model_dir, checkpoint=FLAGS.checkpoint)
    if cfg.data.source != "builtin":
        print("note: 'in pair' counts assume the builtin set's class pairs (2k, 2k + 1).")
    print(f"{restored}: {cfg.model.model_id}, {cfg.data.num_frames} frames at stride "
          f"{cfg.data.temporal_stride}, {cfg.data.image_size}x{cfg.data.image_size}")
    _report("BatchNorm moving statistics (as trained)", model, cfg)
    used = bn_calibration.recalibrate_on_training_data(
        model, dataclasses.replace(cfg, train=dataclasses.replace(
            cfg.train, bn_recalibration_batches=FLAGS.bn_batches)))
    _report(f"BatchNorm statistics re-estimated over {used} training batches", model, cfg)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    app.run(main)
