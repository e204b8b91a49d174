"""Has a search's supernet learned anything? Shared-weight top-1 on both splits, both BatchNorm modes.

    python benchmarks/nas_diagnose.py --search_dir runs/search_tiny --architectures 6

Restores the last checkpoint of a search (or of `benchmarks/nas_ranking.py`'s
supernet), samples ``--architectures`` architectures uniformly from its space
and scores each with the shared weights on ``--clips`` single-clip views of

* the validation split, and
* the *training* split through the same evaluation path (centre clip, no
  augmentation, shuffled mixed-class batches),

once with every batch normalised by its own statistics (``batch``, the
search's reward) and once after recalibrating the architecture's statistics
on ``--calibration_batches`` augmented training batches (``recalibrated``).

If the training split scores well and the validation split does not, the
shared weights overfit; if both are at chance while the search's training
top-1 is not, the evaluation path differs from the training path. Prints mean
+- standard error over the architectures and the total CPU time.
"""
import argparse
import os
import sys

from movinet_tf import cli

if __name__ == "__main__":  # Before TensorFlow is imported.
    cli.quiet_tensorflow()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from movinet_tf import data as data_lib  # noqa: E402
from movinet_tf.nas import config as nas_config  # noqa: E402
from movinet_tf.nas import ranking  # noqa: E402
from movinet_tf.nas import tunas  # noqa: E402
from movinet_tf.nas.traced import TracedSupernet  # noqa: E402

MODES = ("batch", "recalibrated")


def restore(search_dir):
    """(config, supernet, checkpoint path) of a search directory."""
    cfg = nas_config.load_config(os.path.join(search_dir, "config.yaml"))
    supernet = tunas.restore_supernet(cfg, search_dir)
    return cfg, supernet, tf.train.latest_checkpoint(os.path.join(search_dir,
                                                                  tunas.CHECKPOINT_DIR))


def clips_of(cfg, split, count):
    """`count` single-clip views of `split` (evaluation path) in shuffled batches, as a list."""
    batches, total = [], 0
    for video, labels in tunas.validation_batches(cfg.data, cfg.search.seed, split):
        batches.append((video, labels.numpy()))
        total += len(labels)
        if total >= count:
            break
    return batches


def measure(search_dir, architectures, clips, calibration_batches, seed):
    """{(split, mode): [top-1 per architecture]}, the checkpoint and the specs."""
    cfg, supernet, latest = restore(search_dir)
    space = nas_config.build_space(cfg.space)
    traced = TracedSupernet(supernet)
    train = iter(data_lib.build_dataset(cfg.data, cfg.data.train_split, training=True).repeat())
    calibration = tf.concat([next(train)[0] for _ in range(calibration_batches)], axis=0)
    splits = {"val": clips_of(cfg, cfg.data.eval_split, clips),
              "train (eval path)": clips_of(cfg, cfg.data.train_split, clips)}
    rng = np.random.default_rng(seed)
    specs = [space.decode(space.sample(rng)) for _ in range(architectures)]
    results = {}
    for spec in specs:
        for split, batches in splits.items():
            for mode in MODES:
                accuracy, _ = tunas.score(traced, spec, batches, mode, calibration)
                results.setdefault((split, mode), []).append(accuracy)
    return results, latest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--search_dir", required=True)
    parser.add_argument("--architectures", type=int, default=6)
    parser.add_argument("--clips", type=int, default=150, help="clips per split")
    parser.add_argument("--calibration_batches", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.architectures < 2 or args.clips < 1 or args.calibration_batches < 1:
        raise ValueError("--architectures must be >= 2, --clips and --calibration_batches >= 1.")
    results, latest = measure(args.search_dir, args.architectures, args.clips,
                              args.calibration_batches, args.seed)
    print(f"{latest}: {args.architectures} uniformly sampled architectures, "
          f"{args.clips} clips per split")
    print("| split | BatchNorm | top-1 mean +- SE over architectures | per architecture |")
    print("|---|---|---|---|")
    for (split, mode), values in results.items():
        mean, error = ranking.mean_and_standard_error(values)
        print(f"| {split} | {mode} | {mean:.3f} +- {error:.3f} | "
              f"{' '.join(f'{v:.2f}' for v in values)} |")
    times = os.times()
    print(f"CPU s: {times.user + times.system:.0f}")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, TypeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
