"""Trains a searched architecture against two baselines at matched cost: ``python -m movinet_tf.nas.compare``.

    python -m movinet_tf.nas.compare --search_dir runs/search_tiny \\
        --output_dir runs/search_compare --steps 600

The three contenders, each trained with the same short schedule by the trainer
(`movinet_tf.train`) on the search's data, then evaluated on its validation split:

* ``searched``: the search's result (``searched_spec.yaml``);
* ``random``: a uniformly random architecture of the same space whose per-frame
  cost is within ``--cost_tolerance`` of the searched one;
* ``a0_scaled``: MoViNet-A0 at the search's resolution, width-scaled (all
  widths, classifier included) by `scaling.random_scaling_search` to the
  searched cost.

Prints a markdown table and writes ``results.json`` and ``results.md``. Errors
are one line (exit status 2); ``--verbose`` shows TensorFlow's log lines and
tracebacks.
"""
from movinet_tf import cli

if __name__ == "__main__":  # Before TensorFlow is imported.
    cli.quiet_tensorflow()
    cli.import_tensorflow()

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from movinet_tf import atomic_io  # noqa: E402
from movinet_tf import config as experiment_config  # noqa: E402
from movinet_tf.models import specs as specs_lib  # noqa: E402
from movinet_tf.nas import config as nas_config  # noqa: E402
from movinet_tf.nas import scaling  # noqa: E402
from movinet_tf.nas import tunas  # noqa: E402
from movinet_tf.nas.cost import FlopsCost  # noqa: E402

flags.DEFINE_string("search_dir", None, "Output directory of a finished search.")
flags.DEFINE_string("output_dir", None, "Where the three training runs and the table go.")
flags.DEFINE_integer("steps", 600, "Training steps of each contender.")
flags.DEFINE_float("cost_tolerance", 0.05, "Largest |cost / searched cost - 1| of the baselines.")
flags.DEFINE_integer("seed", 0, "Seed of the random architecture and the A0 scaling search.")

FLAGS = flags.FLAGS


def training_config(search_cfg, block_specs, steps):
    """The trainer config of one contender: the search's model settings, the shared short schedule."""
    return nas_config.trainer_config(
        search_cfg, block_specs, model_id="contender",
        model_overrides={"stochastic_depth_drop_rate": 0.0},
        train={"steps": steps, "optimizer": "rmsprop", "base_learning_rate": 0.03,
               "base_batch_size": 8, "schedule": "cosine", "warmup_steps": min(30, steps),
               "label_smoothing": 0.1, "l2_weight_decay": 3.0e-5,
               "checkpoint_every": steps, "log_every": max(1, steps // 10),
               "seed": search_cfg.search.seed},
        eval={"modes": ["clip"]})


def contenders(search_cfg, summary, tolerance, seed):
    """name -> (spec text, per-frame MMACs) of the searched model and the two baselines."""
    settings = nas_config.cost_settings(search_cfg)
    cost = FlopsCost(search_cfg.data.image_size, settings)
    searched = summary["block_specs"]
    target = cost(searched)
    space = nas_config.build_space(search_cfg.space)
    rng = np.random.default_rng(seed)
    for _ in range(100000):
        candidate = specs_lib.format_spec(space.decode(space.sample(rng)))
        if candidate != searched and abs(cost(candidate) / target - 1) <= tolerance:
            break
    else:
        raise ValueError(f"No random architecture within {tolerance:.0%} of the searched cost "
                         f"{target:.3f} MMACs/frame in 100000 draws; raise --cost_tolerance.")
    scaled = scaling.random_scaling_search(
        specs_lib.get_spec("a0"), 1, search_cfg.data.image_size, target * 1e6,
        num_samples=2000, tolerance=tolerance, seed=seed, model_settings=settings,
        scale_classifier=True,
        ranges=dict(depth=(1, 1), resolution=(1, 1), frame_rate=(1, 1), width=(0.05, 1.5)))
    if not scaled:
        raise ValueError("No width scaling of A0 meets the searched cost; raise --cost_tolerance.")
    return {"searched": (searched, target), "random": (candidate, cost(candidate)),
            "a0_scaled": (scaled[0]["spec"], cost(scaled[0]["spec"]))}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS.search_dir or not FLAGS.output_dir:
        raise app.UsageError("--search_dir and --output_dir are required.")
    search_cfg = nas_config.load_config(os.path.join(FLAGS.search_dir, "config.yaml"))
    with open(os.path.join(FLAGS.search_dir, tunas.SUMMARY_FILE), encoding="utf-8") as f:
        summary = json.load(f)
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    rows = []
    for name, (spec, cost) in contenders(search_cfg, summary, FLAGS.cost_tolerance,
                                         FLAGS.seed).items():
        run_dir = os.path.join(FLAGS.output_dir, name)
        config_path = os.path.join(FLAGS.output_dir, f"{name}.yaml")
        cfg = training_config(search_cfg, spec, FLAGS.steps)
        experiment_config.save_config(cfg, config_path)
        print(f"== training {name} ({cost:.3f} MMACs/frame) ==\n{spec}", flush=True)
        # One process per contender: no TF state leaks from one training into the next.
        trained = subprocess.run([sys.executable, "-m", "movinet_tf.train", "--config",
                                  config_path, "--model_dir", run_dir, "--mode", "train_and_eval"])
        if trained.returncode:
            raise cli.UserError(f"training {name} in {run_dir} failed (exit status "
                                f"{trained.returncode}); its error is printed above.")
        with open(os.path.join(run_dir, f"eval_step{FLAGS.steps}.json"), encoding="utf-8") as f:
            metrics = json.load(f)["clip"]
        rows.append({"name": name, "mmacs_per_frame": cost, "val_top1": metrics["top1"],
                     "val_top5": metrics["top5"], "spec": spec})
    table = ["| architecture | MMACs/frame | val top-1 | val top-5 |", "|---|---|---|---|"]
    table += [f"| {r['name']} | {r['mmacs_per_frame']:.3f} | {r['val_top1']:.3f} | "
              f"{r['val_top5']:.3f} |" for r in rows]
    text = "\n".join(table)
    print(text)
    atomic_io.write_text(os.path.join(FLAGS.output_dir, "results.md"), text + "\n")
    atomic_io.write_text(os.path.join(FLAGS.output_dir, "results.json"),
                         json.dumps(rows, indent=2))


if __name__ == "__main__":
    cli.run(main)
