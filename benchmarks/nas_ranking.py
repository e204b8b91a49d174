"""The one-shot test: do the shared weights rank architectures as standalone training does?

    python benchmarks/nas_ranking.py --output_dir runs/nas_ranking --jobs 2  # tiny_builtin
    python benchmarks/nas_ranking.py --output_dir /tmp/rank --supernet_steps 4 \\
        --standalone_steps 2 --architectures 3 --config test_tiny            # smoke run

1. Draws ``--architectures`` distinct architectures of the space whose MACs per
   frame are within ``--cost_tolerance`` of ``search.cost_target``.
2. Trains each from scratch (`nas.standalone`, ``--standalone_steps``, once
   per seed of ``--standalone_seeds``) and evaluates it on the validation
   split; a rerun reuses finished trainings (``--standalone_only`` stops after
   them).
3. Trains a supernet on uniformly sampled architectures for ``--supernet_steps``
   (the search's own warm-up: `tunas.run_search` with every step a warm-up
   step; resumable), or restores the one of ``--search_dir``.
4. Scores each architecture on the whole validation split with the shared
   weights, in two BatchNorm modes: batch statistics of each validation batch,
   and statistics recalibrated for the architecture on
   ``--calibration_batches`` training batches. With ``--finetune_steps N``,
   also fine-tunes each architecture from its shared weights for N steps (the
   standalone recipe at N steps, BatchNorm recalibrated) and evaluates it.
5. Prints one row per architecture and Kendall's tau between each shared-weight
   column and the standalone accuracy, with the wall clock and CPU time of each
   phase; writes ``results.json``.
"""
import argparse
import dataclasses
from concurrent import futures
import json
import os
import sys
import time

from movinet_tf import cli

if __name__ == "__main__":  # Before TensorFlow is imported.
    cli.quiet_tensorflow()

import tensorflow as tf  # noqa: E402

from movinet_tf import atomic_io  # noqa: E402
from movinet_tf import data as data_lib  # noqa: E402
from movinet_tf.nas import config as nas_config  # noqa: E402
from movinet_tf.nas import ranking  # noqa: E402
from movinet_tf.nas import standalone  # noqa: E402
from movinet_tf.nas import tunas  # noqa: E402
from movinet_tf.nas.cost import FlopsCost  # noqa: E402


def _cpu_seconds():
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def train_supernet(cfg, steps, out_dir, report=None):
    """Uniform shared-weight training for `steps` (all warm-up), resumable; returns `out_dir`."""
    loop = cfg.search
    cfg = nas_config.config_from_dict({
        **dataclasses.asdict(cfg),
        "search": {**dataclasses.asdict(loop), "steps": steps, "warmup_steps": steps,
                   "weight_warmup_steps": min(loop.weight_warmup_steps, steps - 1),
                   "checkpoint_every": min(loop.checkpoint_every, steps),
                   "log_every": min(loop.log_every, steps)}})
    if not os.path.exists(os.path.join(out_dir, tunas.SUMMARY_FILE)):
        tunas.run_search(cfg, out_dir, report=report)
    return out_dir


def validation_batches(cfg):
    """The whole validation split, one centre clip per video, in seeded mixed-class batches
    (`tunas.validation_batches`), as a list of (video, labels)."""
    dataset = tunas.validation_batches(cfg.data, cfg.search.seed)
    return [(video, labels.numpy()) for video, labels in dataset]


def calibration_clips(cfg, batches):
    """`batches` training batches joined into one [B, T, H, W, 3] tensor."""
    train = iter(data_lib.build_dataset(cfg.data, cfg.data.train_split, training=True).repeat())
    return tf.concat([next(train)[0] for _ in range(batches)], axis=0)


def _tau(x, y):
    """Kendall's tau-b and its jackknife standard error; None where undefined (ties)."""
    try:
        tau = ranking.kendall_tau(x, y)
    except ValueError:  # all tied: no ranking at all
        return None, None
    try:
        return tau, ranking.kendall_tau_standard_error(x, y)
    except ValueError:  # too few architectures or too many ties
        return tau, None


def _run_dir(output_dir, index, seed, base_seed):
    # Seed `base_seed` keeps the name of the one-seed runs, so older runs are reused.
    suffix = "" if seed == base_seed else f"_seed{seed}"
    return os.path.join(output_dir, f"arch{index}{suffix}")


def measure(cfg, output_dir, supernet_steps, architectures, tolerance, standalone_steps,
            calibration_batches, seed=0, search_dir=None, standalone_only=False, jobs=1,
            finished_only=False, report=print, standalone_seeds=1, finetune_steps=0,
            finetune_recalibration_batches=4):
    """Runs the benchmark (steps 1-5 of the module docstring); returns the results dict.

    The standalone trainings run first (they do not depend on the supernet);
    with `standalone_only` the function returns after them (None). `jobs`
    trainings run at a time. With `finished_only`, only the architectures whose
    standalone training has already finished (every seed) are ranked (a
    partial measurement). `standalone_seeds` > 1 trains every architecture with
    seeds ``seed .. seed + n - 1``; the standalone column is their mean, and
    the tau between the first two seeds' columns says how well one standalone
    training ranks another (the ceiling of any proxy). `finetune_steps` > 0
    adds a column: each architecture fine-tuned from its shared weights for
    that many steps by the standalone recipe, BatchNorm recalibrated on
    `finetune_recalibration_batches` training batches.
    """
    timings = {}
    cost = FlopsCost(cfg.data.image_size, nas_config.cost_settings(cfg))
    space = nas_config.build_space(cfg.space)
    specs = ranking.same_cost_architectures(space, cost, cfg.search.cost_target, architectures,
                                            tolerance, seed)
    seeds = list(range(seed, seed + standalone_seeds))
    started = time.time()

    def train(item):
        (index, text), run_seed = item
        run = standalone.train(cfg, text, standalone_steps, run_seed,
                               _run_dir(output_dir, index, run_seed, seed))
        report(f"arch{index} seed {run_seed}: {cost(text):.3f} MMACs/frame  standalone val "
               f"top-1 {run['val_top1']:.3f}  [{run['seconds']:.0f} s, "
               f"{run['cpu_seconds']:.0f} CPU-s]\n{text}")
        return run

    items = list(enumerate(specs))
    if finished_only:
        items = [(i, text) for i, text in items if all(os.path.exists(os.path.join(
            _run_dir(output_dir, i, s, seed), f"eval_step{standalone_steps}.json"))
            for s in seeds)]
        if len(items) < 2:
            raise ValueError(f"--finished_only: {len(items)} finished standalone trainings in "
                             f"{output_dir}; at least 2 are needed.")
    # Each training is its own process; the threads only wait for them.
    with futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        flat = list(pool.map(train, [(item, s) for item in items for s in seeds]))
    runs = [flat[i * len(seeds):(i + 1) * len(seeds)] for i in range(len(items))]
    specs = [text for _, text in items]
    timings["standalone trainings"] = (time.time() - started,
                                       sum(run["cpu_seconds"] for run in flat))
    if standalone_only:
        return None

    started, cpu = time.time(), _cpu_seconds()
    if search_dir is None:
        search_dir = train_supernet(cfg, supernet_steps, os.path.join(output_dir, "supernet"),
                                    report=lambda r: report(_progress(r)))
    supernet = tunas.restore_supernet(cfg, search_dir)
    timings["supernet"] = (time.time() - started, _cpu_seconds() - cpu)

    started, cpu = time.time(), _cpu_seconds()
    shared = ranking.shared_weight_accuracies(
        supernet, specs, validation_batches(cfg), calibration_clips(cfg, calibration_batches))
    timings["shared-weight scoring"] = (time.time() - started, _cpu_seconds() - cpu)

    finetuned = None
    if finetune_steps:
        started = time.time()

        def finetune_done(position, run):
            report(f"arch{items[position][0]}: fine-tuned {finetune_steps} steps from the shared "
                   f"weights, val top-1 {run['val_top1']:.3f}  [{run['seconds']:.0f} s, "
                   f"{run['cpu_seconds']:.0f} CPU-s]")

        finetuned = ranking.finetune_from_shared(
            cfg, supernet,
            [(text, os.path.join(output_dir, f"finetune{finetune_steps}_arch{index}"))
             for index, text in items],
            finetune_steps, seed, jobs=jobs,
            recalibration_batches=finetune_recalibration_batches, done=finetune_done)
        timings[f"fine-tuning ({finetune_steps} steps)"] = (
            time.time() - started, sum(run["cpu_seconds"] for run in finetuned))

    rows = []
    for position, ((index, text), accuracies, seed_runs) in enumerate(zip(items, shared, runs)):
        row = {"index": index, "spec": text, "mmacs_per_frame": cost(text),
               "shared_batch_bn": accuracies["batch"],
               "shared_recalibrated_bn": accuracies["recalibrated"],
               "standalone": sum(r["val_top1"] for r in seed_runs) / len(seed_runs),
               "standalone_per_seed": [r["val_top1"] for r in seed_runs],
               "clips": accuracies["clips"]}
        if finetuned is not None:
            row["finetuned"] = finetuned[position]["val_top1"]
        rows.append(row)
        report(f"arch{index}: {cost(text):.3f} MMACs/frame  shared {accuracies['batch']:.3f} "
               f"(batch BN) {accuracies['recalibrated']:.3f} (recalibrated)  standalone "
               f"{row['standalone']:.3f}")
    standalone_top1 = [r["standalone"] for r in rows]
    taus, errors = {}, {}
    modes = ["shared_batch_bn", "shared_recalibrated_bn"] + (["finetuned"] if finetuned else [])
    for mode in modes:
        taus[mode], errors[mode] = _tau([r[mode] for r in rows], standalone_top1)
    if len(seeds) > 1:
        taus["seed_to_seed"], errors["seed_to_seed"] = _tau(
            [r["standalone_per_seed"][0] for r in rows],
            [r["standalone_per_seed"][1] for r in rows])
    return {"rows": rows, "kendall_tau": taus, "kendall_tau_standard_error": errors,
            "supernet_steps": supernet_steps, "standalone_steps": standalone_steps,
            "standalone_seeds": seeds, "finetune_steps": finetune_steps,
            "cost_target": cfg.search.cost_target,
            "timings": {k: {"seconds": round(w, 1), "cpu_seconds": round(c, 1)}
                        for k, (w, c) in timings.items()}}


def _progress(record):
    if record.get("event") != "progress":
        return f"supernet: {record.get('event')}"
    probe = f"  probe_top1 {record['probe_top1']:.2f}" if "probe_top1" in record else ""
    return (f"supernet step {record['step']}  {record['seconds']:.0f}s  loss {record['loss']:.3f}"
            f"  train_top1 {record['train_top1']:.2f}{probe}")


_COLUMNS = {"shared_batch_bn": "shared, batch BN",
            "shared_recalibrated_bn": "shared, recalibrated BN",
            "finetuned": "fine-tuned from shared"}


def format_results(results):
    rows = results["rows"]
    modes = [m for m in _COLUMNS if m in rows[0]]
    seeds = results.get("standalone_seeds", [0])
    standalone = "standalone" if len(seeds) == 1 else f"standalone (mean of {len(seeds)} seeds)"
    finetune = results.get("finetune_steps")
    names = [_COLUMNS[m] + (f" ({finetune} steps)" if m == "finetuned" else "") for m in modes]
    lines = ["| arch | MMACs/frame | " + " | ".join(names) + f" | {standalone} |",
             "|---|---|" + "---|" * (len(modes) + 1)]
    lines += [f"| {r['index']} | {r['mmacs_per_frame']:.3f} | "
              + " | ".join(f"{r[m]:.3f}" for m in modes) + f" | {r['standalone']:.3f} |"
              for r in rows]
    taus = results["kendall_tau"]
    errors = results.get("kendall_tau_standard_error", {})

    def text(mode):
        if taus[mode] is None:
            return "undefined (all tied)"
        error = errors.get(mode)
        return f"{taus[mode]:+.3f}" + ("" if error is None else f" +- {error:.3f}")

    lines += ["", "Kendall tau vs standalone (+- jackknife standard error): "
              + ", ".join(f"{_COLUMNS[m]} {text(m)}" for m in modes)
              + f" ({len(rows)} architectures, {rows[0]['clips']} validation clips each)"]
    if "seed_to_seed" in taus:
        lines.append(f"Kendall tau between standalone seeds {seeds[0]} and {seeds[1]} (the "
                     f"ceiling of any proxy against one seed): {text('seed_to_seed')}")
    lines += ["", "| phase | wall s | CPU s |", "|---|---|---|"]
    lines += [f"| {name} | {t['seconds']:.0f} | {t['cpu_seconds']:.0f} |"
              for name, t in results["timings"].items()]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="tiny_builtin",
                        help="search config: a YAML path or a name in configs/search/")
    parser.add_argument("--set", action="append", default=[], help="config override key=value")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--search_dir", default=None,
                        help="use this search's supernet instead of training one")
    parser.add_argument("--supernet_steps", type=int, default=None,
                        help="uniform shared-weight steps (default: search.warmup_steps)")
    parser.add_argument("--architectures", type=int, default=10)
    parser.add_argument("--cost_tolerance", type=float, default=0.05)
    parser.add_argument("--standalone_steps", type=int, default=600)
    parser.add_argument("--standalone_seeds", type=int, default=1,
                        help="standalone trainings of each architecture (seeds --seed ..); the "
                             "column is their mean")
    parser.add_argument("--finetune_steps", type=int, default=0,
                        help="also fine-tune each architecture from its shared weights for this "
                             "many steps (the standalone recipe) and rank those (0: skip)")
    parser.add_argument("--finetune_recalibration_batches", type=int, default=4,
                        help="training batches that re-measure BatchNorm after the fine-tuning")
    parser.add_argument("--calibration_batches", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--standalone_only", action="store_true",
                        help="only train the architectures standalone (a rerun without it reuses "
                             "them)")
    parser.add_argument("--finished_only", action="store_true",
                        help="rank only the architectures already trained standalone (partial)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="standalone trainings run at the same time")
    args = parser.parse_args(argv)
    cfg = nas_config.load_config(args.config, args.set)
    steps = args.supernet_steps or cfg.search.warmup_steps
    if (steps < 1 or args.architectures < 2 or args.standalone_steps < 1 or args.jobs < 1
            or args.standalone_seeds < 1 or args.finetune_steps < 0
            or args.finetune_recalibration_batches < 0):
        raise ValueError("--supernet_steps, --standalone_steps, --standalone_seeds and --jobs "
                         "must be >= 1, --architectures >= 2, --finetune_steps and "
                         "--finetune_recalibration_batches >= 0.")
    os.makedirs(args.output_dir, exist_ok=True)
    results = measure(cfg, args.output_dir, steps, args.architectures, args.cost_tolerance,
                      args.standalone_steps, args.calibration_batches, args.seed,
                      args.search_dir, args.standalone_only,
                      args.jobs, args.finished_only,
                      report=lambda line: print(line, flush=True),
                      standalone_seeds=args.standalone_seeds, finetune_steps=args.finetune_steps,
                      finetune_recalibration_batches=args.finetune_recalibration_batches)
    if results is None:
        return
    text = format_results(results)
    print(text)
    atomic_io.write_text(os.path.join(args.output_dir, "results.json"),
                         json.dumps(results, indent=2))
    atomic_io.write_text(os.path.join(args.output_dir, "results.md"), text + "\n")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, TypeError, OSError, cli.UserError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
