"""`nas.rerank`: the search's candidates fine-tuned from the shared weights, the best kept."""
import json
import os

import pytest

from movinet_tf import config as experiment_config
from movinet_tf.models import specs as specs_lib
from movinet_tf.nas import config as nas_config
from movinet_tf.nas import rerank
from movinet_tf.nas import tunas

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEST_CONFIG = os.path.join(REPO, "configs", "search", "test_tiny.yaml")


def test_choose_takes_the_best_and_the_more_likely_on_a_tie():
    rows = [{"finetuned_val_top1": v} for v in (0.2, 0.5, 0.5, 0.1)]
    assert rerank.choose(rows) == 1
    assert rerank.choose([{"finetuned_val_top1": 0.3}]) == 0
    with pytest.raises(ValueError):
        rerank.choose([])


def test_search_then_rerank_keeps_the_best_fine_tuned_candidate(tmp_path):
    cfg = nas_config.load_config(TEST_CONFIG, [
        f"data.path={tmp_path / 'builtin'}", "search.rerank_candidates=2",
        "search.rerank_steps=2", "search.rerank_cost_tolerance=1.0"])
    out = str(tmp_path / "out")
    summary = tunas.run_search(cfg, out)
    candidates = summary["candidates"]
    assert len(candidates) == 2
    assert candidates[0]["block_specs"] == summary["block_specs"]  # the controller's choice first
    assert len({c["block_specs"] for c in candidates}) == 2
    space = nas_config.build_space(cfg.space)
    assert all(space.contains(c["block_specs"]) for c in candidates)

    records = []
    result = rerank.run(cfg, out, report=records.append, jobs=2)
    rows = result["candidates"]
    assert [r["block_specs"] for r in rows] == [c["block_specs"] for c in candidates]
    # Each fine-tuning is a real trainer run started from the shared weights.
    for row in rows:
        run_dir = rerank.run_dir(out, row["block_specs"], 2)
        with open(os.path.join(run_dir, "eval_step2.json")) as f:
            assert json.load(f)["clip"]["top1"] == row["finetuned_val_top1"]
        run_cfg = experiment_config.load_config(run_dir + ".yaml")
        assert run_cfg.train.init_checkpoint == os.path.abspath(run_dir + ".weights.h5")
        assert run_cfg.model.block_specs == row["block_specs"]
        assert row["cpu_seconds"] > 0
    chosen = rows[rerank.choose(rows)]
    assert result["rerank"]["chosen"] == rerank.choose(rows)
    assert result["block_specs"] == chosen["block_specs"]
    assert result["cost"] == chosen["cost"]
    assert result["controller_block_specs"] == candidates[0]["block_specs"]
    assert [r["event"] for r in records] == (["rerank_start"] + ["rerank_candidate"] * 2
                                             + ["rerank_done"])
    # The result files describe the kept architecture.
    with open(os.path.join(out, tunas.SUMMARY_FILE)) as f:
        assert json.load(f)["block_specs"] == chosen["block_specs"]
    assert tunas.load_spec_yaml(os.path.join(out, tunas.SPEC_FILE)) == chosen["block_specs"]
    train_cfg = experiment_config.load_config(os.path.join(out, tunas.TRAIN_CONFIG_FILE))
    assert train_cfg.model.block_specs == chosen["block_specs"]
    specs_lib.parse_spec(train_cfg.model.block_specs)

    # Run again (as after a kill): the finished fine-tunings are reused, the choice is the same.
    again = rerank.run(cfg, out)
    assert all(r["cpu_seconds"] == 0 for r in again["candidates"])
    assert again["block_specs"] == result["block_specs"]


def test_without_candidates_the_search_result_stands(tmp_path):
    cfg = nas_config.load_config(TEST_CONFIG, [f"data.path={tmp_path / 'builtin'}",
                                               "search.steps=3", "search.warmup_steps=1"])
    out = str(tmp_path / "out")
    summary = tunas.run_search(cfg, out)
    assert "candidates" not in summary
    with open(os.path.join(out, tunas.SPEC_FILE)) as f:
        before = f.read()
    assert rerank.run(cfg, out)["block_specs"] == summary["block_specs"]
    with open(os.path.join(out, tunas.SPEC_FILE)) as f:
        assert f.read() == before
    assert not os.path.exists(os.path.join(out, rerank.RERANK_DIR))


@pytest.mark.parametrize("key,value", [("rerank_candidates", -1), ("rerank_steps", 0),
                                       ("rerank_cost_tolerance", 0)])
def test_bad_rerank_settings_are_named(key, value):
    with pytest.raises(ValueError, match=f"search.{key}"):
        nas_config.load_config(TEST_CONFIG, [f"search.{key}={value}"])
