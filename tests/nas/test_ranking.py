"""The benchmark statistics: Kendall's tau, standard errors, same-cost architectures."""
import math

import numpy as np
import pytest
from scipy import stats

from movinet_tf.models import specs as specs_lib
from movinet_tf.nas import ranking
from movinet_tf.nas.cost import FlopsCost

from tests.nas.spaces import small_space


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
