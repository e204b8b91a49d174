"""Seconds per shared-weight step of the one-shot search: eager sliced vs one traced graph.

    python benchmarks/nas_step_time.py                       # configs/search/tiny_builtin.yaml
    python benchmarks/nas_step_time.py --config test_tiny --steps 3 --warmup 1  # smoke run

Both paths train the same supernet config on the same train batches (drawn
from the search's own pipeline before timing, so decoding is not measured) with
the search's optimizer, and score on validation batches:

* eager: `Supernet.forward` on the sliced weights (the search until session 3);
* traced: `nas.traced.TracedSupernet`, the architecture a tensor, one graph.

Every step samples a new architecture uniformly (the warm-up). ``--warmup``
untimed steps first (the traced path traces then). Prints wall clock and CPU
seconds (this process, all threads) per step and the ratios.
"""
import argparse
import os
import sys
import time

from movinet_tf import cli

if __name__ == "__main__":  # Before TensorFlow is imported.
    cli.quiet_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from movinet_tf import data as data_lib  # noqa: E402
from movinet_tf.nas import config as nas_config  # noqa: E402
from movinet_tf.nas import tunas  # noqa: E402
from movinet_tf.nas.traced import TracedSupernet  # noqa: E402
from movinet_tf.training import optimizer as optimizer_lib  # noqa: E402


def _cpu_seconds():
    times = os.times()
    return times.user + times.system


def _eager_step(supernet, optimizer, loss_fn, spec, video, labels, num_classes):
    with tf.GradientTape() as tape:
        logits = supernet.forward(video, spec, training=True, update_stats=True)
        loss = loss_fn(tf.one_hot(labels, num_classes), logits)
    grads = tape.gradient(loss, supernet.trainable_weights)
    pairs = [(tf.clip_by_norm(g, 5.0), v) for g, v in zip(grads, supernet.trainable_weights)
             if g is not None]
    optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
    return float(loss)


def measure(cfg, steps, warmup, seed=0):
    """dict path -> {'train': (wall, cpu) per step, 'score': (wall, cpu) per batch}."""
    space = nas_config.build_space(cfg.space)
    train = iter(data_lib.build_dataset(cfg.data, cfg.data.train_split, training=True).repeat())
    val = iter(data_lib.build_dataset(cfg.data, cfg.data.eval_split, training=False).repeat())
    total = steps + warmup
    train_batches = [next(train) for _ in range(total)]
    val_batches = [next(val) for _ in range(total)]
    rng = np.random.default_rng(seed)
    specs = [space.decode(space.sample(rng)) for _ in range(2 * total)]
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True,
                                                   label_smoothing=cfg.search.label_smoothing)
    results = {}
    for path in ("eager", "traced"):
        keras.utils.set_random_seed(seed)
        supernet = tunas.build_supernet(cfg)
        optimizer = optimizer_lib.build_optimizer(cfg.search.weight_optimizer,
                                                  tunas.weight_schedule(cfg.search),
                                                  momentum=cfg.search.momentum)
        optimizer.build(supernet.trainable_weights)
        traced = TracedSupernet(supernet, optimizer, loss_fn)

        def train_step(i):
            video, labels = train_batches[i]
            if path == "eager":
                return _eager_step(supernet, optimizer, loss_fn, specs[i], video, labels,
                                   cfg.data.num_classes)
            return float(traced.train_step(video, labels, specs[i])[0])

        def score_step(i):
            net = supernet if path == "eager" else traced
            return tunas.score(net, specs[total + i], [val_batches[i]], "batch")[0]

        row = {}
        for name, fn in (("train", train_step), ("score", score_step)):
            for i in range(warmup):
                fn(i)
            wall, cpu = time.perf_counter(), _cpu_seconds()
            for i in range(warmup, total):
                fn(i)
            row[name] = ((time.perf_counter() - wall) / steps, (_cpu_seconds() - cpu) / steps)
        row["traces"] = traced.tracing_counts() if path == "traced" else None
        results[path] = row
    return results


def format_results(results, cfg, steps):
    data = cfg.data
    lines = [f"{data.num_frames} frames of {data.image_size}x{data.image_size}, train batch "
             f"{data.batch_size}, eval batch {data.eval_batch_size}; {steps} timed steps each, "
             f"a new uniformly sampled architecture every step", "",
             "| path | train step wall s | train step CPU s | score batch wall s | "
             "score batch CPU s |", "|---|---|---|---|---|"]
    for path, row in results.items():
        lines.append(f"| {path} | {row['train'][0]:.3f} | {row['train'][1]:.3f} | "
                     f"{row['score'][0]:.3f} | {row['score'][1]:.3f} |")
    eager, traced = results["eager"], results["traced"]
    ratio = lambda key, i: eager[key][i] / max(traced[key][i], 1e-9)  # noqa: E731
    lines.append(f"| eager / traced | {ratio('train', 0):.1f}x | {ratio('train', 1):.1f}x | "
                 f"{ratio('score', 0):.1f}x | {ratio('score', 1):.1f}x |")
    lines += ["", f"traced graphs: {traced['traces']}"]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="tiny_builtin",
                        help="search config: a YAML path or a name in configs/search/")
    parser.add_argument("--set", action="append", default=[], help="config override key=value")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per path")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 1:
        raise ValueError("--steps and --warmup must be >= 1.")
    cfg = nas_config.load_config(args.config, args.set)
    print(format_results(measure(cfg, args.steps, args.warmup), cfg, args.steps))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, TypeError, OSError, cli.UserError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
