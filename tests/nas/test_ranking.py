"""The benchmark statistics: Kendall's tau, standard errors, same-cost architectures."""
import math
import os

import numpy as np
import pytest
from scipy import stats

from movinet_tf import checkpoints
from movinet_tf.models import specs as specs_lib
from movinet_tf.nas import config as nas_config
from movinet_tf.nas import ranking
from movinet_tf.nas import standalone
from movinet_tf.nas import tunas
from movinet_tf.nas.cost import FlopsCost
from movinet_tf.training import state as state_lib

from helpers import randomize_weights, random_video
from tests.nas.spaces import small_space

TEST_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "configs", "search", "test_tiny.yaml")


def test_kendall_tau_by_hand():
    # Pairs of (1, 2, 3) vs (1, 3, 2): (0,1) and (0,2) concordant, (1,2) discordant.
    assert ranking.kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert ranking.kendall_tau([0.1, 0.2, 0.3, 0.4], [4, 3, 2, 1]) == -1.0
    # A tie in x: 5 untied pairs of 6 in x, all 6 untied in y; pairs (0,2), (1,2)
    # concordant, (0,3), (1,3), (2,3) discordant, (0,1) tied.
    assert ranking.kendall_tau([1, 1, 2, 3], [1, 2, 3, 0]) == pytest.approx(
        (2 - 3) / math.sqrt(5 * 6))


def test_kendall_tau_equals_scipy_tau_b_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        # Accuracies on 150 clips tie often: draw from a few values.
        x = rng.integers(0, 5, size=10) / 150
        y = rng.integers(0, 6, size=10) / 150
        if len(set(x)) == 1 or len(set(y)) == 1:
            continue
        assert ranking.kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic,
                                                          abs=1e-12)


def test_kendall_tau_standard_error_is_the_jackknife_of_scipys_tau():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=8), rng.normal(size=8)
    y = x + 0.8 * y  # a ranking with some agreement
    leave_one_out = np.array([stats.kendalltau(np.delete(x, i), np.delete(y, i)).statistic
                              for i in range(8)])
    expected = math.sqrt(7 / 8 * np.sum((leave_one_out - leave_one_out.mean()) ** 2))
    assert ranking.kendall_tau_standard_error(x, y) == pytest.approx(expected, abs=1e-12)
    assert ranking.kendall_tau_standard_error(x, x) == 0.0  # every subset agrees perfectly
    with pytest.raises(ValueError, match="at least 3"):
        ranking.kendall_tau_standard_error([1, 2], [2, 1])


def test_kendall_tau_rejects_what_has_no_ranking():
    with pytest.raises(ValueError, match="constant"):
        ranking.kendall_tau([0.1, 0.1, 0.1], [1, 2, 3])
    with pytest.raises(ValueError, match="one length"):
        ranking.kendall_tau([1, 2], [1, 2, 3])


def test_mean_and_standard_error():
    mean, error = ranking.mean_and_standard_error([0.2, 0.3, 0.7])
    assert mean == pytest.approx(0.4)
    # sample standard deviation sqrt(((-.2)^2 + (-.1)^2 + .3^2) / 2) = sqrt(0.07)
    assert error == pytest.approx(math.sqrt(0.07) / math.sqrt(3))
    assert ranking.mean_and_standard_error([0.5]) == (0.5, 0.0)


def test_same_cost_architectures_are_distinct_seeded_and_within_tolerance():
    space = small_space()
    cost = FlopsCost(32, dict(num_classes=10))
    target = cost(specs_lib.format_spec(space.decode(space.sample(np.random.default_rng(1)))))
    found = ranking.same_cost_architectures(space, cost, target, 5, 0.1, seed=3)
    assert len(set(found)) == 5
    assert all(abs(cost(text) / target - 1) <= 0.1 for text in found)
    assert found == ranking.same_cost_architectures(space, cost, target, 5, 0.1, seed=3)
    assert found[0] not in ranking.same_cost_architectures(space, cost, target, 5, 0.1, seed=3,
                                                           exclude=[found[0]])
    with pytest.raises(ValueError, match="raise the tolerance"):
        ranking.same_cost_architectures(space, cost, target * 100, 1, 0.01, seed=0,
                                        max_draws=50)


def test_shared_weights_start_the_standalone_contender(tmp_path):
    cfg = nas_config.load_config(TEST_CONFIG)
    supernet = tunas.build_supernet(cfg)
    randomize_weights(supernet, seed=4)  # no zero ReZero scales, no identity BatchNorms
    space = nas_config.build_space(cfg.space)
    rng = np.random.default_rng(5)
    texts = [specs_lib.format_spec(space.decode(space.sample(rng))) for _ in range(2)]
    video = random_video([2, 8, 32, 32, 3])
    logits = []
    for i, text in enumerate(texts):
        path = str(tmp_path / f"arch{i}.weights.h5")
        ranking.write_shared_weights(cfg, supernet, text, path)
        assert sorted(os.listdir(tmp_path)) == [f"arch{j}.weights.h5" for j in range(i + 1)]
        # What the trainer of a fine-tuning run builds and loads.
        train_cfg = standalone.training_config(cfg, text, steps=3, init_weights=path,
                                               recalibration_batches=2)
        assert train_cfg.train.init_checkpoint == path
        assert train_cfg.train.bn_recalibration_batches == 2
        model = checkpoints.model_from_config(train_cfg)
        state_lib.load_init_checkpoint(model, path, train_cfg.train.init_checkpoint_modules)
        got = model(video, training=False).numpy()
        np.testing.assert_allclose(got, supernet.forward(video, text).numpy(), atol=1e-5,
                                   rtol=0)
        logits.append(got)
    assert np.abs(logits[0] - logits[1]).max() > 1e-3  # two architectures really differ
    with pytest.raises(ValueError, match="weights.h5"):
        ranking.write_shared_weights(cfg, supernet, texts[0], str(tmp_path / "x.h5"))
    assert not os.path.exists(tmp_path / "x.h5")
