"""The statistics of the search benchmarks: rank correlation, standard errors, same-cost samples.

`benchmarks/nas_ranking.py` asks whether the supernet's shared weights rank
architectures as standalone training does (Kendall's tau), as they are and
after a short fine-tuning from them (`write_shared_weights`); `nas.compare`
reports means with standard errors over seeds. Both draw architectures of
equal cost with `same_cost_architectures`.
"""
import math
from concurrent import futures

import numpy as np

from movinet_tf import atomic_io
from movinet_tf.models import specs as specs_lib
from movinet_tf.nas import standalone
from movinet_tf.nas import tunas
from movinet_tf.nas.traced import TracedSupernet


def kendall_tau(x, y):
    """Kendall's rank correlation tau-b of two equally long sequences.

    Counts concordant and discordant pairs; ties (in either sequence) count as
    neither, and tau-b divides by ``sqrt((n0 - ties_x) * (n0 - ties_y))`` with
    n0 the number of pairs, so tied accuracies (common with 150 validation
    clips) neither help nor hurt. 1: the same order, -1: reversed, about 0:
    unrelated.

    Raises:
        ValueError: unequal lengths, fewer than 2 items, or a sequence that is
            all ties (tau is undefined).
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"kendall_tau needs two 1-D sequences of one length, got shapes "
                         f"{x.shape} and {y.shape}.")
    if len(x) < 2:
        raise ValueError("kendall_tau needs at least 2 items.")
    concordant = discordant = tied_x = tied_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
            tied_x += dx == 0
            tied_y += dy == 0
            if dx * dy > 0:
                concordant += 1
            elif dx * dy < 0:
                discordant += 1
    pairs = len(x) * (len(x) - 1) // 2
    denominator = math.sqrt((pairs - tied_x) * (pairs - tied_y))
    if denominator == 0:
        raise ValueError("kendall_tau is undefined when one sequence is constant.")
    return (concordant - discordant) / denominator


def kendall_tau_standard_error(x, y):
    """The jackknife standard error of `kendall_tau(x, y)`.

    Tau is recomputed with each item left out; the error is
    ``sqrt((n - 1) / n * sum((tau_i - mean(tau_i)) ** 2))``. Leave-one-out
    values that are undefined (a constant remainder) are skipped.

    Raises:
        ValueError: fewer than 3 items, or fewer than 2 defined leave-one-out values.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        raise ValueError("kendall_tau_standard_error needs at least 3 items.")
    values = []
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        try:
            values.append(kendall_tau(x[keep], y[keep]))
        except ValueError:
            continue
    if len(values) < 2:
        raise ValueError("kendall_tau_standard_error: too few defined leave-one-out values.")
    values = np.asarray(values)
    n = len(values)
    return float(math.sqrt((n - 1) / n * np.sum((values - values.mean()) ** 2)))


def mean_and_standard_error(values):
    """(mean, standard error of the mean) of a sequence; the error is 0.0 for one value."""
    values = np.asarray(values, float)
    if values.size == 0:
        raise ValueError("mean_and_standard_error of an empty sequence.")
    if values.size == 1:
        return float(values[0]), 0.0
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def same_cost_architectures(space, cost_fn, target, count, tolerance, seed, exclude=(),
                            max_draws=200000):
    """`count` distinct uniformly sampled spec strings whose cost is within `tolerance` of `target`.

    Args:
        space: the `SearchSpace`.
        cost_fn: spec -> cost (e.g. `cost.FlopsCost`).
        target: the cost to match.
        count: how many architectures.
        tolerance: largest ``|cost / target - 1|``.
        seed: seeds the draws (the same seed gives the same architectures).
        exclude: spec strings not to return (e.g. the searched one).
        max_draws: give up after this many draws.

    Raises:
        ValueError: if fewer than `count` are found in `max_draws` draws.
    """
    rng = np.random.default_rng(seed)
    found, seen = [], set(exclude)
    for _ in range(max_draws):
        text = specs_lib.format_spec(space.decode(space.sample(rng)))
        if text not in seen and abs(cost_fn(text) / target - 1) <= tolerance:
            found.append(text)
            if len(found) == count:
                return found
        seen.add(text)
    raise ValueError(f"Only {len(found)} of {count} architectures within {tolerance:.0%} of the "
                     f"cost {target:.3f} in {max_draws} draws; raise the tolerance.")


def shared_weight_accuracies(supernet, specs, val_batches, calibration):
    """Validation top-1 of each architecture with the shared weights, in both BatchNorm modes.

    Args:
        supernet: a trained `Supernet` (scored through one `TracedSupernet` graph).
        specs: spec strings.
        val_batches: (video, labels) pairs, the whole validation split.
        calibration: [B, T, H, W, 3] training clips for the recalibrated mode.

    Returns:
        list of dicts, one per spec: ``batch`` (every validation batch normalised
        with its own statistics), ``recalibrated`` (statistics measured on
        `calibration` for this architecture) and ``clips``.
    """
    traced = TracedSupernet(supernet)
    rows = []
    for text in specs:
        batch, clips = tunas.score(traced, text, val_batches, "batch")
        recalibrated, _ = tunas.score(traced, text, val_batches, "recalibrated", calibration)
        rows.append({"batch": batch, "recalibrated": recalibrated, "clips": clips})
    return rows


def write_shared_weights(cfg, supernet, spec_text, path):
    """Writes the contender model of `spec_text` holding its slice of the shared weights.

    The model is the one `nas.standalone` trains (the search config's model
    settings, `standalone.MODEL_OVERRIDES`), so ``standalone.train(...,
    init_weights=path)`` fine-tunes the architecture from the supernet. The
    file (a Keras ``.weights.h5``) appears whole or not at all.

    Args:
        cfg: the `NasConfig` the supernet was built from.
        supernet: a trained `Supernet`.
        spec_text: the architecture.
        path: where the weights go; must end in ``.weights.h5``.
    """
    if not path.endswith(".weights.h5"):
        raise ValueError(f"write_shared_weights: {path!r} must end in .weights.h5.")
    model = tunas.build_candidate(cfg, spec_text, **standalone.MODEL_OVERRIDES)
    supernet.copy_to_model(spec_text, model)
    with atomic_io.temporary_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)


def finetune_from_shared(cfg, supernet, runs, steps, seed, jobs=1, recalibration_batches=4,
                         done=None):
    """`standalone.train` of each architecture, started from its slice of the shared weights.

    Each run's weights go to ``<run_dir>.weights.h5``. They are written every time
    (about a second each), one after another before any training starts (Keras
    model building is not thread-safe), so a file left from another supernet
    never starts a run. A finished run in its directory is reused as it is,
    like every standalone run. BatchNorm is recalibrated on
    `recalibration_batches` training batches after the last step.

    Args:
        cfg: the `NasConfig` of the supernet.
        supernet: a trained `Supernet`.
        runs: (spec text, run directory) pairs.
        steps, seed: of each fine-tuning.
        jobs: trainings at a time (each is its own process).
        done: optional callable(position, result) called as each run finishes.

    Returns:
        the `standalone.train` dicts, in the order of `runs`.
    """
    for text, run_dir in runs:
        write_shared_weights(cfg, supernet, text, run_dir.rstrip("/") + ".weights.h5")

    def train(position):
        text, run_dir = runs[position]
        result = standalone.train(cfg, text, steps, seed, run_dir,
                                  init_weights=run_dir.rstrip("/") + ".weights.h5",
                                  recalibration_batches=recalibration_batches)
        if done:
            done(position, result)
        return result

    with futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(train, range(len(runs))))
