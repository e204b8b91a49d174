"""Trains a searched architecture against two baselines at matched cost: ``python -m movinet_tf.nas.compare``.

    python -m movinet_tf.nas.compare --search_dir runs/search_tiny \\
        --output_dir runs/search_compare --steps 600 --seeds 3 --scales 2,4 --jobs 2

The three contenders, each trained from scratch with the same recipe and step
budget (`nas.standalone`) on the search's data, once per seed, then evaluated
on its validation split:

* ``searched``: the search's result (``searched_spec.yaml``);
* ``random``: a uniformly random architecture of the same space whose per-frame
  cost is within ``--cost_tolerance`` of the searched one (one architecture,
  drawn with ``--seed``);
* ``a0_scaled``: MoViNet-A0 at the search's resolution, width-scaled (all
  widths, classifier included) by `scaling.random_scaling_search` to the
  searched cost;
* ``controller_choice``: only when the search re-ranked its candidates
  (`nas.rerank`) and kept another one, the controller's own most likely
  architecture, so the table shows what the re-ranking changed.

``--scales 2,4`` adds compound scaling: the searched architecture grown to 2x
and 4x its cost (depth, width and resolution coefficients from
`scaling.random_scaling_search`), and the scaled A0 grown with the same
coefficients, each trained the same way.

Prints a markdown table (mean and standard error over the seeds) and writes
``results.json`` and ``results.md``. Rerunning the command skips the finished
trainings. Errors are one line (exit status 2); ``--verbose`` shows
TensorFlow's log lines and tracebacks.
"""
from movinet_tf import cli

if __name__ == "__main__":  # Before TensorFlow is imported.
    cli.quiet_tensorflow()
    cli.import_tensorflow()

import dataclasses  # noqa: E402
from concurrent import futures  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from movinet_tf import atomic_io  # noqa: E402
from movinet_tf.models import specs as specs_lib  # noqa: E402
from movinet_tf.nas import config as nas_config  # noqa: E402
from movinet_tf.nas import ranking  # noqa: E402
from movinet_tf.nas import scaling  # noqa: E402
from movinet_tf.nas import standalone  # noqa: E402
from movinet_tf.nas import tunas  # noqa: E402
from movinet_tf.nas.cost import FlopsCost  # noqa: E402

flags.DEFINE_string("search_dir", None, "Output directory of a finished search.")
flags.DEFINE_string("output_dir", None, "Where the training runs and the table go.")
flags.DEFINE_integer("steps", 600, "Training steps of each contender (standalone models "
                     "stay at chance for the first 200-300).")
flags.DEFINE_integer("seeds", 3, "Trainings of each contender (seeds 0..N-1).")
flags.DEFINE_list("scales", [], "Compound-scaling factors of the searched cost, e.g. 2,4.")
flags.DEFINE_float("cost_tolerance", 0.05, "Largest |cost / searched cost - 1| of the baselines.")
flags.DEFINE_integer("jobs", 1, "Trainings run at the same time (each in its own process).")
flags.DEFINE_integer("seed", 0, "Seed of the random architecture and the scaling searches.")

FLAGS = flags.FLAGS


def contenders(search_cfg, summary, tolerance, seed):
    """name -> (spec text, per-frame MMACs) of the searched model, the two baselines and,
    when the re-ranking replaced it, the controller's choice (see the module docstring)."""
    settings = nas_config.cost_settings(search_cfg)
    cost = FlopsCost(search_cfg.data.image_size, settings)
    searched = summary["block_specs"]
    target = cost(searched)
    space = nas_config.build_space(search_cfg.space)
    random_spec, = ranking.same_cost_architectures(space, cost, target, 1, tolerance, seed,
                                                   exclude=[searched])
    scaled = scaling.random_scaling_search(
        specs_lib.get_spec("a0"), 1, search_cfg.data.image_size, target * 1e6,
        num_samples=2000, tolerance=tolerance, seed=seed, model_settings=settings,
        scale_classifier=True,
        ranges=dict(depth=(1, 1), resolution=(1, 1), frame_rate=(1, 1), width=(0.05, 1.5)))
    if not scaled:
        raise ValueError("No width scaling of A0 meets the searched cost; raise --cost_tolerance.")
    found = {"searched": (searched, target), "random": (random_spec, cost(random_spec)),
             "a0_scaled": (scaled[0]["spec"], cost(scaled[0]["spec"]))}
    controller_choice = summary.get("controller_block_specs", searched)
    if controller_choice != searched:
        found["controller_choice"] = (controller_choice, cost(controller_choice))
    return found


def scaled_pair(search_cfg, searched, a0_scaled, factor, seed, tolerance=0.05):
    """The searched base and the scaled A0 grown by the same coefficients to `factor` x the cost.

    The coefficients (depth, width, resolution; the frame rate stays) are
    searched for the searched base (`scaling.random_scaling_search`) and
    applied unchanged to A0, as the paper grew A0 into A1-A5.

    Returns:
        dict: ``coefficients``, ``size`` (the new image size) and, for
        'searched' and 'a0_scaled', (spec text, MMACs per frame at that size).
    """
    settings = nas_config.cost_settings(search_cfg)
    size = search_cfg.data.image_size
    base_cost = FlopsCost(size, settings)(searched)
    found = scaling.random_scaling_search(
        searched, 1, size, base_cost * 1e6 * factor, num_samples=3000, tolerance=tolerance,
        seed=seed, model_settings=settings, scale_classifier=True,
        ranges=dict(frame_rate=(1, 1), depth=(1, 2.5), width=(1, 2), resolution=(1, 1.75)))
    if not found:
        raise ValueError(f"No compound scaling of the searched architecture reaches {factor}x "
                         "its cost within 5%.")
    best = found[0]
    coefficients = {k: best[k] for k in ("depth", "width", "resolution")}
    cost = FlopsCost(best["size"], settings)
    a0_text = specs_lib.format_spec(scaling.scale_spec(
        a0_scaled, coefficients["depth"], coefficients["width"], scale_classifier=True))
    return {"coefficients": coefficients, "size": best["size"],
            "searched": (best["spec"], cost(best["spec"])), "a0_scaled": (a0_text, cost(a0_text))}


def resized(search_cfg, size):
    """The search config with its clips at `size` (the resize before the crop in proportion)."""
    data = search_cfg.data
    min_size = int(round(data.min_image_size * size / data.image_size))
    return dataclasses.replace(search_cfg, data=dataclasses.replace(
        data, image_size=size, min_image_size=min_size))


def table(rows, seeds):
    lines = [f"| architecture | MMACs/frame | val top-1 (mean +- s.e., {seeds} seeds) | "
             "val top-5 | per seed | train s (CPU s) |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['mmacs_per_frame']:.3f} | {r['val_top1']:.3f} +- "
                     f"{r['val_top1_se']:.3f} | {r['val_top5']:.3f} | "
                     f"{' '.join(f'{a:.3f}' for a in r['val_top1_per_seed'])} | "
                     f"{r['seconds']:.0f} ({r['cpu_seconds']:.0f}) |")
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS.search_dir or not FLAGS.output_dir:
        raise app.UsageError("--search_dir and --output_dir are required.")
    if FLAGS.seeds < 1 or FLAGS.steps < 1 or FLAGS.jobs < 1:
        raise app.UsageError("--seeds, --steps and --jobs must be >= 1.")
    factors = [float(f) for f in FLAGS.scales]
    search_cfg = nas_config.load_config(os.path.join(FLAGS.search_dir, "config.yaml"))
    with open(os.path.join(FLAGS.search_dir, tunas.SUMMARY_FILE), encoding="utf-8") as f:
        summary = json.load(f)
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    entries = [(name, spec, cost, search_cfg) for name, (spec, cost) in
               contenders(search_cfg, summary, FLAGS.cost_tolerance, FLAGS.seed).items()]
    for factor in factors:
        pair = scaled_pair(search_cfg, entries[0][1], entries[2][1], factor, FLAGS.seed)
        cfg = resized(search_cfg, pair["size"])
        for name in ("searched", "a0_scaled"):
            spec, cost = pair[name]
            entries.append((f"{name}_x{factor:g}", spec, cost, cfg))
    for name, spec, cost, cfg in entries:
        print(f"== {name} ({cost:.3f} MMACs/frame at {cfg.data.image_size}x"
              f"{cfg.data.image_size}) ==\n{spec}", flush=True)

    def train(task):
        (name, spec, _, cfg), seed = task
        run = standalone.train(cfg, spec, FLAGS.steps, seed,
                               os.path.join(FLAGS.output_dir, f"{name}_seed{seed}"))
        print(f"{name} seed {seed}: val top-1 {run['val_top1']:.3f}  ({run['seconds']:.0f} s, "
              f"{run['cpu_seconds']:.0f} CPU-s)", flush=True)
        return run

    tasks = [(entry, seed) for entry in entries for seed in range(FLAGS.seeds)]
    # Each training is its own process; threads only wait for them.
    with futures.ThreadPoolExecutor(max_workers=FLAGS.jobs) as pool:
        finished = list(pool.map(train, tasks))
    rows = []
    for position, (name, spec, cost, cfg) in enumerate(entries):
        runs = finished[position * FLAGS.seeds:(position + 1) * FLAGS.seeds]
        top1, top1_se = ranking.mean_and_standard_error([r["val_top1"] for r in runs])
        rows.append({"name": name, "mmacs_per_frame": cost, "image_size": cfg.data.image_size,
                     "val_top1": top1, "val_top1_se": top1_se,
                     "val_top5": ranking.mean_and_standard_error(
                         [r["val_top5"] for r in runs])[0],
                     "val_top1_per_seed": [r["val_top1"] for r in runs],
                     "seconds": sum(r["seconds"] for r in runs),
                     "cpu_seconds": sum(r["cpu_seconds"] for r in runs), "spec": spec})
        atomic_io.write_text(os.path.join(FLAGS.output_dir, "results.json"),
                             json.dumps(rows, indent=2))
    text = table(rows, FLAGS.seeds)
    print(text)
    atomic_io.write_text(os.path.join(FLAGS.output_dir, "results.md"), text + "\n")


if __name__ == "__main__":
    cli.run(main)
