"""`nas.compare`'s contenders at matched cost, the compound-scaled pairs, the ranking benchmark."""
import importlib.util
import os

import numpy as np
import pytest

from movinet_tf import config as experiment_config
from movinet_tf.models import specs as specs_lib
from movinet_tf.nas import compare
from movinet_tf.nas import config as nas_config
from movinet_tf.nas import ranking
from movinet_tf.nas import scaling
from movinet_tf.nas.cost import FlopsCost

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEST_CONFIG = os.path.join(REPO, "configs", "search", "test_tiny.yaml")


def _searched(cfg, seed=0):
    space = nas_config.build_space(cfg.space)
    return specs_lib.format_spec(space.decode(space.sample(np.random.default_rng(seed))))


def test_contenders_match_the_searched_cost():
    cfg = nas_config.load_config(TEST_CONFIG)
    searched = _searched(cfg)
    found = compare.contenders(cfg, {"block_specs": searched}, tolerance=0.2, seed=1)
    cost = FlopsCost(cfg.data.image_size, nas_config.cost_settings(cfg))
    assert found["searched"] == (searched, cost(searched))
    for name in ("random", "a0_scaled"):
        text, macs = found[name]
        assert macs == pytest.approx(cost(text))
        assert abs(macs / cost(searched) - 1) <= 0.2, name
    assert found["random"][0] != searched
    assert nas_config.build_space(cfg.space).contains(found["random"][0])
    # A0's 5 blocks keep their depth (1, 3, 3, 4, 4 layers); only widths shrink.
    a0 = specs_lib.parse_spec(found["a0_scaled"][0])
    assert [len(b.layers) for b in a0.blocks] == [1, 3, 3, 4, 4]
    assert "controller_choice" not in found
    # A re-ranked search also trains the controller's own choice, at its own cost.
    other = _searched(cfg, seed=5)
    reranked = compare.contenders(cfg, {"block_specs": searched, "controller_block_specs": other},
                                  tolerance=0.2, seed=1)
    assert list(reranked) == ["searched", "random", "a0_scaled", "controller_choice"]
    assert reranked["controller_choice"] == (other, cost(other))
    assert {k: reranked[k] for k in found} == found
    same = compare.contenders(cfg, {"block_specs": searched, "controller_block_specs": searched},
                              tolerance=0.2, seed=1)
    assert "controller_choice" not in same


def test_scaled_pair_grows_both_bases_with_the_same_coefficients():
    cfg = nas_config.load_config(TEST_CONFIG)
    searched = _searched(cfg)
    a0 = compare.contenders(cfg, {"block_specs": searched}, tolerance=0.2, seed=1)["a0_scaled"][0]
    base = FlopsCost(cfg.data.image_size, nas_config.cost_settings(cfg))(searched)
    pair = compare.scaled_pair(cfg, searched, a0, 2.0, seed=0, tolerance=0.1)
    text, macs = pair["searched"]
    assert macs / base == pytest.approx(2.0, rel=0.1)
    assert pair["size"] % 8 == 0 and pair["size"] >= cfg.data.image_size
    grown = specs_lib.parse_spec(text)
    assert grown.stem_filters >= specs_lib.parse_spec(searched).stem_filters
    # The A0 row is the scaled A0 grown with the searched base's coefficients.
    c = pair["coefficients"]
    assert pair["a0_scaled"][0] == specs_lib.format_spec(
        scaling.scale_spec(a0, c["depth"], c["width"], scale_classifier=True))
    resized = compare.resized(cfg, pair["size"])
    assert resized.data.image_size == pair["size"]
    assert resized.data.min_image_size >= pair["size"]


def _load_benchmark(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "benchmarks",
                                                                     f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_ranking_benchmark_runs_on_a_toy_config(tmp_path):
    bench = _load_benchmark("nas_ranking")
    cfg = nas_config.load_config(TEST_CONFIG, [f"data.path={tmp_path / 'builtin'}",
                                               "search.cost_target=0.2"])
    lines = []
    results = bench.measure(cfg, str(tmp_path / "rank"), supernet_steps=2, architectures=2,
                            tolerance=0.5, standalone_steps=1, calibration_batches=1,
                            report=lines.append, finetune_steps=1,
                            finetune_recalibration_batches=1)
    rows = results["rows"]
    assert len(rows) == 2 and rows[0]["spec"] != rows[1]["spec"]
    # 10 validation videos (1 per class), scored whole; accuracies are counts of 10.
    assert all(r["clips"] == 10 for r in rows)
    for row in rows:
        for key in ("shared_batch_bn", "shared_recalibrated_bn", "standalone", "finetuned"):
            assert row[key] * 10 == pytest.approx(round(row[key] * 10)), key
    for mode, tau in results["kendall_tau"].items():
        if tau is not None:
            assert tau == ranking.kendall_tau([r[mode] for r in rows],
                                              [r["standalone"] for r in rows])
    assert set(results["timings"]) == {"standalone trainings", "supernet",
                                       "shared-weight scoring", "fine-tuning (1 steps)"}
    text = bench.format_results(results)
    assert "Kendall tau" in text and "fine-tuned from shared (1 steps)" in text
    # Each fine-tuning run started from its architecture's slice of the supernet.
    for row in rows:
        run = tmp_path / "rank" / f"finetune1_arch{row['index']}"
        used = experiment_config.load_config(str(run) + ".yaml")
        assert used.train.init_checkpoint == str(run) + ".weights.h5"
        assert os.path.isfile(used.train.init_checkpoint)
        assert used.model.block_specs == row["spec"] and used.train.steps == 1
    # A rerun reuses the finished trainings and the supernet; --finished_only with a
    # third, untrained architecture ranks the two that are trained.
    again = bench.measure(cfg, str(tmp_path / "rank"), supernet_steps=2, architectures=3,
                          tolerance=0.5, standalone_steps=1, calibration_batches=1,
                          finished_only=True, report=lines.append)
    assert [r["standalone"] for r in again["rows"]] == [r["standalone"] for r in rows]
    assert [r["index"] for r in again["rows"]] == [0, 1]
    assert again["timings"]["standalone trainings"]["cpu_seconds"] == 0
    assert not os.path.exists(tmp_path / "rank" / "arch2")
