"""Architecture search for MoViNets: ``python -m movinet_tf.search``.

    python -m movinet_tf.search --config configs/search/tiny_builtin.yaml \\
        --output_dir runs/search_tiny
    python -m movinet_tf.search --config tiny_builtin --set search.steps=100

Flags:
    --config      a YAML path, or a name in ``configs/search/``.
    --output_dir  checkpoints and outputs (default ``runs/search_<config name>``).
    --set         ``key=value`` override, repeatable (e.g. ``search.cost_target=4``).
    --jobs        re-ranking fine-tunings at a time (``search.rerank_candidates``; default 1).

Runs the one-shot TuNAS-style search of `movinet_tf.nas.tunas` and prints a
progress line every ``search.log_every`` steps: the supernet's training loss,
the controller's entropy, the sampled architectures' cost, quality and reward,
and (with ``search.probe_architectures``) the shared-weight validation accuracy
of uniformly sampled architectures.
With ``search.rerank_candidates: K`` it then fine-tunes the controller's K
most likely architectures a few steps each from the shared weights and keeps
the best (`movinet_tf.nas.rerank`), printing a line per candidate.
Killed and restarted with the same command, it resumes from its last
checkpoint (or its last finished fine-tuning). At the end it writes ``searched_spec.yaml`` (for
``build_model(block_specs=...)`` or a training config), ``train_searched.yaml``
and ``summary.json`` to the output directory.

Errors are one line (exit status 2); ``--verbose`` shows TensorFlow's log lines
and tracebacks.
"""
from movinet_tf import cli

if __name__ == "__main__":  # Before TensorFlow is imported.
    cli.quiet_tensorflow()
    cli.import_tensorflow()

import os  # noqa: E402

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """Defines the CLI flags when run as a program (importing never registers them)."""
    flags.DEFINE_string("config", None, "Search config: a YAML path or a name in configs/search/.")
    flags.DEFINE_string("output_dir", None, "Output directory (default runs/search_<config name>).")
    flags.DEFINE_multi_string("set", [], "Override, key=value with a dotted key; repeatable.")
    flags.DEFINE_integer("jobs", 1, "Re-ranking fine-tunings at a time (search.rerank_candidates).",
                         lower_bound=1)


def _print_record(record):
    event = record.get("event")
    if event == "resumed":
        print(f"resumed at step {record['step']} from {record['checkpoint']}", flush=True)
    elif event == "progress":
        line = f"step {record['step']:>6}  {record['seconds']:>7.1f}s  loss {record['loss']:.3f}" \
               f"  train_top1 {record['train_top1']:.2f}"
        if "probe_top1" in record:
            line += f"  probe_top1 {record['probe_top1']:.2f}"
        if "reward" in record:
            line += (f"  val_top1 {record['quality']:.2f}  cost {record['cost']:.3f}"
                     f"  reward {record['reward']:+.3f}  baseline {record['baseline']:+.3f}"
                     f"  entropy {record['entropy']:.2f}  argmax_cost {record['argmax_cost']:.3f}")
        else:
            line += "  (warm-up: shared weights only)"
        print(line, flush=True)
    elif event == "done":
        print("\nSearched architecture "
              f"(cost {record['cost']:.3f} {record['cost_unit']}, target "
              f"{record['cost_target']}; supernet val top-1 {record['supernet_val_top1']:.3f}):")
        print(record["block_specs"], flush=True)
    elif event == "rerank_start":
        print(f"\nRe-ranking {record['candidates']} candidates: each fine-tuned "
              f"{record['steps']} steps from the shared weights", flush=True)
    elif event == "rerank_candidate":
        print(f"candidate {record['position']}: cost {record['cost']:.3f}  log p "
              f"{record['log_probability']:+.2f}  fine-tuned val top-1 "
              f"{record['finetuned_val_top1']:.3f}  [{record['cpu_seconds']:.0f} CPU-s]",
              flush=True)
    elif event == "rerank_done":
        rerank = record["rerank"]
        kept = ("the controller's most likely architecture" if rerank["chosen"] == 0
                else f"candidate {rerank['chosen']} instead of the controller's most likely")
        print(f"\nKept {kept} (fine-tuned val top-1 {rerank['finetuned_val_top1']:.3f}, cost "
              f"{record['cost']:.3f} {record['cost_unit']}, {rerank['seconds']:.0f} s):")
        print(record["block_specs"], flush=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS.config:
        raise app.UsageError("--config is required, e.g. --config configs/search/tiny_builtin.yaml")
    from movinet_tf.nas import config as nas_config
    from movinet_tf.nas import rerank
    from movinet_tf.nas import tunas
    cfg = nas_config.load_config(FLAGS.config, FLAGS.set)
    output_dir = FLAGS.output_dir or os.path.join(
        "runs", "search_" + os.path.splitext(os.path.basename(FLAGS.config))[0])
    tunas.run_search(cfg, output_dir, report=_print_record)
    rerank.run(cfg, output_dir, report=_print_record, jobs=FLAGS.jobs)
    print(f"Outputs in {output_dir}: {tunas.SPEC_FILE}, {tunas.TRAIN_CONFIG_FILE}, "
          f"{tunas.SUMMARY_FILE}")


def run():
    cli.quiet_tensorflow()
    define_flags()
    cli.run(main)


if __name__ == "__main__":
    run()
