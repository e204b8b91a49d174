"""The search's last stage: its most likely architectures re-ranked by a short fine-tune.

The controller's reward is the shared weights' accuracy on two validation
batches, a noisy and biased proxy: `benchmarks/nas_ranking.py` measured its
rank correlation with standalone accuracy at tau +0.32 +- 0.26, and +0.54 +-
0.21 for the same architectures fine-tuned 200 steps from their slice of the
shared weights (docs/search.md). So with ``search.rerank_candidates: K`` the
search ends by fine-tuning the controller's K most likely architectures within
``search.rerank_cost_tolerance`` of the cost target (the most likely one always
among them; `tunas.rerank_candidates` picks them) for ``search.rerank_steps``
steps each, with the standalone recipe (`nas.standalone`), and keeps the best on
the validation clips (ties: the more likely). The three result files are then
rewritten for it; ``summary.json`` keeps the controller's own choice as
``controller_block_specs``, every candidate's fine-tuned score in
``candidates`` and the choice under ``rerank``.

The fine-tunings are trainer runs in ``<output_dir>/rerank/``, named by the
architecture, so a killed re-ranking resumes where it stopped; the validation
clips that choose are those the controller's reward already uses.
"""
import hashlib
import json
import os
import time

from movinet_tf import data as data_lib
from movinet_tf.nas import ranking
from movinet_tf.nas import tunas
from movinet_tf.nas.traced import TracedSupernet

RERANK_DIR = "rerank"


def run_dir(output_dir, spec_text, steps):
    """The trainer directory of one candidate's fine-tuning (named by its spec and steps)."""
    digest = hashlib.sha1(spec_text.encode("utf-8")).hexdigest()[:12]
    return os.path.join(output_dir, RERANK_DIR, f"finetune{steps}_{digest}")


def choose(rows):
    """The position of the best ``finetuned_val_top1``; on a tie the earlier (more likely) one."""
    if not rows:
        raise ValueError("choose: no candidates.")
    best = max(row["finetuned_val_top1"] for row in rows)
    return next(i for i, row in enumerate(rows) if row["finetuned_val_top1"] == best)


def run(cfg, output_dir, report=None, jobs=1):
    """Re-ranks the candidates of a finished search and rewrites its result files.

    Args:
        cfg: the search's `NasConfig`.
        output_dir: the search's output directory (its last checkpoint and
            ``summary.json`` with ``candidates``).
        report: optional callable(dict) with each progress record.
        jobs: fine-tunings at a time.

    Returns:
        the summary dict, rewritten; unchanged when it holds no candidates
        (``search.rerank_candidates: 0``).
    """
    with open(os.path.join(output_dir, tunas.SUMMARY_FILE), encoding="utf-8") as f:
        summary = json.load(f)
    candidates = summary.get("candidates")
    if not candidates:
        return summary
    steps = cfg.search.rerank_steps
    if report:
        report({"event": "rerank_start", "candidates": len(candidates), "steps": steps})
    start = time.time()
    supernet = tunas.restore_supernet(cfg, output_dir)
    rows = [dict(candidate) for candidate in candidates]

    def done(position, result):
        rows[position].update(finetuned_val_top1=result["val_top1"],
                              cpu_seconds=result["cpu_seconds"])
        if report:
            report({"event": "rerank_candidate", "position": position, **rows[position]})

    ranking.finetune_from_shared(
        cfg, supernet, [(row["block_specs"], run_dir(output_dir, row["block_specs"], steps))
                        for row in rows],
        steps, cfg.search.seed, jobs=jobs, done=done)
    best = rows[choose(rows)]
    controller_choice = rows[0]["block_specs"]  # the controller's most likely architecture
    if best["block_specs"] != controller_choice:
        # The shared weights' score of the new choice, as the search scores its own.
        loop = cfg.search
        val = list(tunas.validation_batches(cfg.data, loop.seed).take(loop.final_eval_batches))
        calibration = None
        if loop.reward_bn == "recalibrated":
            calibration = next(iter(data_lib.build_dataset(cfg.data, cfg.data.train_split,
                                                           training=True)))[0]
        accuracy, total = tunas.score(TracedSupernet(supernet), best["block_specs"], val,
                                      loop.reward_bn, calibration)
        summary.update(supernet_val_top1=accuracy, supernet_val_clips=total)
    # The scored rows replace the bare candidate list: one copy of each candidate.
    summary.update(block_specs=best["block_specs"], cost=best["cost"],
                   controller_block_specs=controller_choice, candidates=rows,
                   rerank={"steps": steps, "chosen": rows.index(best),
                           "finetuned_val_top1": best["finetuned_val_top1"],
                           "seconds": round(time.time() - start, 1)})
    tunas.write_outputs(cfg, output_dir, summary)
    if report:
        report({"event": "rerank_done", **{k: v for k, v in summary.items()
                                           if k not in ("history", "space", "candidates")}})
    return summary

