"""Probabilistic scores and coverage tests against hand computations: the interval score,
pinball and CRPS, Kupiec and Christoffersen on known miss sequences, MASE on log returns."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from forecasting.metrics import MetricInputError
from forecasting.scores import (
    QUANTILE_GRID,
    christoffersen_tests,
    coverage_by_group,
    coverage_tests,
    crps_from_quantiles,
    h_step_naive_scale,
    interval_score,
    interval_scores,
    kupiec_bounds,
    kupiec_test,
    mase_log_returns,
    non_overlapping,
    pinball_loss,
    terciles,
)


def test_interval_score_by_hand() -> None:
    # inside: the width; below by 1 at 80%: width + (2 / 0.2) * 1; above by 0.5: width + 10 * 0.5
    scores = interval_scores([0.0, -2.0, 1.5], [-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], 0.8)
    np.testing.assert_allclose(scores, [2.0, 12.0, 7.0])
    assert interval_score([0.0, -2.0, 1.5], [-1.0] * 3, [1.0] * 3, 0.8) == pytest.approx(7.0)
    # at 95% a miss costs 2 / 0.05 = 40 per unit
    assert interval_score([3.0], [-1.0], [1.0], 0.95) == pytest.approx(2.0 + 40.0 * 2.0)


def test_pinball_and_crps_by_hand() -> None:
    # y = 1, q(0.1) = 0, q(0.9) = 2: losses 0.1 * 1 and 0.1 * 1
    assert pinball_loss([1.0], {0.1: [0.0], 0.9: [2.0]}) == pytest.approx(0.1)
    assert crps_from_quantiles([1.0], {0.1: [0.0], 0.9: [2.0]}) == pytest.approx(0.2)


def test_crps_of_a_standard_normal_at_its_median() -> None:
    """The closed form at y = mu is sigma * (2 phi(0) - 1 / sqrt(pi)) = 0.2337; the 19-level
    grid approximates it within 5% (the same rule for every model compared)."""
    quantiles = {tau: np.array([stats.norm.ppf(tau)]) for tau in QUANTILE_GRID}
    exact = 2 * stats.norm.pdf(0) - 1 / math.sqrt(math.pi)
    assert crps_from_quantiles([0.0], quantiles) == pytest.approx(exact, rel=0.05)


def _kupiec_by_hand(n: int, x: int, p: float) -> float:
    null = x * math.log(p) + (n - x) * math.log(1 - p)
    rate = x / n
    alt = (x * math.log(rate) if x else 0.0) + ((n - x) * math.log(1 - rate) if x < n else 0.0)
    return -2.0 * (null - alt)


def test_kupiec_matches_the_hand_computation() -> None:
    # 10 misses in 100 at 95%: LR = -2[10 ln .05 + 90 ln .95 - 10 ln .1 - 90 ln .9] = 4.1308
    result = kupiec_test(np.arange(100) < 10, 0.95)
    assert (result.n, result.misses) == (100, 10)
    assert result.statistic == pytest.approx(_kupiec_by_hand(100, 10, 0.05))
    assert result.statistic == pytest.approx(4.1308, abs=1e-4)
    assert result.p_value == pytest.approx(0.0421, abs=1e-4)
    # exactly the nominal rate: statistic 0, p 1
    assert kupiec_test(np.arange(100) < 20, 0.8).statistic == pytest.approx(0.0, abs=1e-12)
    # no miss at all in 50 at 80%: LR = -2 * 50 * ln 0.8
    assert kupiec_test(np.zeros(50, bool), 0.8).statistic == pytest.approx(-100 * math.log(0.8))


def test_christoffersen_matches_the_hand_computation() -> None:
    # 50 hits, 5 clustered misses, 45 hits: n00 = 93, n01 = 1, n10 = 1, n11 = 4
    missed = np.array([False] * 50 + [True] * 5 + [False] * 45)
    n00, n01, n10, n11 = 93, 1, 1, 4
    pi, pi01, pi11 = 5 / 99, 1 / 94, 4 / 5
    restricted = (n00 + n10) * math.log(1 - pi) + (n01 + n11) * math.log(pi)
    unrestricted = (
        n00 * math.log(1 - pi01)
        + n01 * math.log(pi01)
        + n10 * math.log(1 - pi11)
        + n11 * math.log(pi11)
    )
    independence, conditional = christoffersen_tests(missed, 0.95)
    assert independence.statistic == pytest.approx(-2 * (restricted - unrestricted))
    assert independence.p_value < 0.001  # clustered misses are not independent
    assert conditional.statistic == pytest.approx(
        independence.statistic + _kupiec_by_hand(100, 5, 0.05)
    )
    assert conditional.p_value == pytest.approx(stats.chi2.sf(conditional.statistic, 2))


def test_christoffersen_sees_no_dependence_when_misses_follow_at_the_base_rate() -> None:
    # transitions n00 = 4, n01 = 2, n10 = 2, n11 = 1: pi01 = pi11 = pi = 1/3, so LR_ind = 0
    missed = [0, 0, 1, 1, 0, 0, 0, 1, 0, 0]
    independence, _ = christoffersen_tests(missed, 0.8)
    assert independence.statistic == pytest.approx(0.0, abs=1e-12)
    assert independence.p_value == pytest.approx(1.0)


def test_multi_step_tests_use_non_overlapping_origins() -> None:
    missed = np.zeros((30, 3), dtype=bool)
    missed[::2, 1] = True
    assert non_overlapping(missed, 1).size == 30
    assert non_overlapping(missed, 2).size == 15 and non_overlapping(missed, 2).all()
    assert non_overlapping(missed, 3).size == 10
    report = coverage_tests(missed, 0.8)
    assert [s["kupiec"]["n"] for s in report["per_step"]] == [30, 15, 10]
    assert report["min_kupiec_p"] == report["per_step"][1]["kupiec"]["p_value"]
    assert report["min_kupiec_p"] < 1e-6


def test_kupiec_bounds_bracket_the_nominal_rate() -> None:
    low, high = kupiec_bounds(378, 0.8)
    assert low < 0.8 < high
    assert kupiec_test(np.arange(378) < round(378 * (1 - low)), 0.8).p_value >= 0.01


def test_mase_on_log_returns_gives_the_known_value() -> None:
    # log closes 0, .01, .03, .02, .05: one-step naive errors .01 .02 .01 .03 -> .0175;
    # two-step errors .03 .01 .02 -> .02
    closes = np.exp([0.0, 0.01, 0.03, 0.02, 0.05])
    scale = h_step_naive_scale(closes, 2)
    np.testing.assert_allclose(scale, [0.0175, 0.02])
    actual = np.array([[0.02, 0.03], [-0.01, 0.0]])
    predicted = np.zeros((2, 2))
    expected = np.mean([0.02 / 0.0175, 0.03 / 0.02, 0.01 / 0.0175, 0.0 / 0.02])
    assert mase_log_returns(actual, predicted, scale) == pytest.approx(expected)
    # the naive forecast in sample scores exactly 1 at step 1
    logs = np.log(closes)
    in_sample = (logs[1:] - logs[:-1])[:, None]
    assert mase_log_returns(in_sample, np.zeros_like(in_sample), scale[:1]) == pytest.approx(1.0)


def test_groups_and_terciles() -> None:
    covered = np.array([[True, False], [True, True], [False, False]])
    assert coverage_by_group(covered, ["a", "b", "a"]) == {"a": 0.25, "b": 1.0}
    labels = terciles(np.arange(9.0))
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_bad_input_is_refused() -> None:
    with pytest.raises(MetricInputError, match="level"):
        interval_score([0.0], [-1.0], [1.0], 1.2)
    with pytest.raises(MetricInputError, match="above upper"):
        interval_score([0.0], [1.0], [-1.0], 0.8)
    with pytest.raises(MetricInputError, match="True/False"):
        kupiec_test([0, 2, 1], 0.8)
    with pytest.raises(MetricInputError, match="constant"):
        h_step_naive_scale(np.ones(10), 2)
    with pytest.raises(MetricInputError, match="is empty"):
        pinball_loss([1.0], {})
