"""Accuracy measures and the Diebold-Mariano test: hand-worked values and properties."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from forecasting.metrics import (
    DieboldMariano,
    MetricInputError,
    coverage,
    diebold_mariano,
    directional_accuracy,
    mae,
    mape,
    mase,
    naive_scale,
    r2,
    rmse,
    theil_u2,
)

# One small example used throughout:
#   actual    = [10, 12,  8, 11]
#   predicted = [11, 12,  6, 12]
#   error     = actual - predicted = [-1, 0, 2, -1]
ACTUAL = [10.0, 12.0, 8.0, 11.0]
PREDICTED = [11.0, 12.0, 6.0, 12.0]


def t4_cdf(x: float) -> float:
    """Student's t CDF with 4 degrees of freedom in closed form (no scipy), for hand checks:
    F(x) = 1/2 + (3/8) * x / sqrt(1 + x^2/4) * (1 - x^2 / (12 * (1 + x^2/4)))."""
    u = 1.0 + x * x / 4.0
    return 0.5 + 0.375 * x / math.sqrt(u) * (1.0 - x * x / (12.0 * u))


# ---------------------------------------------------------------- hand-computed point measures


def test_rmse_by_hand() -> None:
    # squared errors 1, 0, 4, 1 -> mean 6/4 = 1.5
    assert rmse(ACTUAL, PREDICTED) == pytest.approx(math.sqrt(1.5))


def test_mae_by_hand() -> None:
    # |errors| 1, 0, 2, 1 -> mean 4/4
    assert mae(ACTUAL, PREDICTED) == pytest.approx(1.0)


def test_mape_by_hand() -> None:
    # 100 * mean(1/10, 0/12, 2/8, 1/11) = 100 * 0.440909... / 4 = 11.0227...
    expected = 100.0 * (1 / 10 + 0 / 12 + 2 / 8 + 1 / 11) / 4
    assert mape(ACTUAL, PREDICTED) == pytest.approx(expected)
    assert expected == pytest.approx(11.02272727)


def test_r2_by_hand() -> None:
    # mean(actual) = 41/4 = 10.25; deviations -0.25, 1.75, -2.25, 0.75
    # SS_tot = 0.0625 + 3.0625 + 5.0625 + 0.5625 = 8.75; SS_res = 1 + 0 + 4 + 1 = 6
    assert r2(ACTUAL, PREDICTED) == pytest.approx(1.0 - 6.0 / 8.75)


def test_r2_constant_actual_follows_the_finite_convention() -> None:
    # SS_tot = 0: 1.0 for an exact forecast, 0.0 for any other (scikit-learn's force_finite)
    assert r2([5.0, 5.0, 5.0], [5.0, 5.0, 5.0]) == 1.0
    assert r2([5.0, 5.0, 5.0], [5.0, 6.0, 5.0]) == 0.0


def test_naive_scale_and_mase_by_hand() -> None:
    # train 10, 12, 11, 15: one-step naive errors |12-10|, |11-12|, |15-11| = 2, 1, 4 -> 7/3
    train = [10.0, 12.0, 11.0, 15.0]
    assert naive_scale(train) == pytest.approx(7.0 / 3.0)
    # lag 2: |11-10|, |15-12| = 1, 3 -> 2
    assert naive_scale(train, lag=2) == pytest.approx(2.0)
    # test actual 16, 14 vs forecast 15, 15: MAE = 1 -> MASE = 1 / (7/3) = 3/7
    assert mase([16.0, 14.0], [15.0, 15.0], naive_scale(train)) == pytest.approx(3.0 / 7.0)


def test_theil_u2_by_hand() -> None:
    # naive 9, 9, 9, 9: errors 1, 3, -1, 2 -> squared 1, 9, 1, 4 -> MSE 15/4 = 3.75
    # model MSE 1.5 (above) -> U2 = sqrt(1.5) / sqrt(3.75) = sqrt(0.4)
    assert theil_u2(ACTUAL, PREDICTED, [9.0] * 4) == pytest.approx(math.sqrt(0.4))


def test_directional_accuracy_by_hand() -> None:
    reference = [10.0, 10.0, 10.0, 10.0]
    actual = [11.0, 9.0, 10.0, 12.0]
    predicted = [12.0, 11.0, 11.0, 10.0]
    # origin 1: up / up -> 1; origin 2: up / down -> 0; origin 3: up / unchanged -> 0;
    # origin 4: predicted change exactly 0 -> 0.5.  (1 + 0 + 0 + 0.5) / 4 = 0.375
    assert directional_accuracy(actual, predicted, reference) == pytest.approx(0.375)


def test_directional_accuracy_broadcasts_one_reference_per_origin_row() -> None:
    # two origins (rows) x two steps; reference = last close of each origin
    actual = [[11.0, 9.0], [19.0, 21.0]]
    predicted = [[12.0, 12.0], [19.5, 20.0]]
    reference = [10.0, 20.0]
    # row 1: up/up 1, up/down 0; row 2: down/down 1, no change predicted 0.5 -> 2.5 / 4
    assert directional_accuracy(actual, predicted, reference) == pytest.approx(0.625)


def test_coverage_by_hand_with_closed_and_infinite_bounds() -> None:
    actual = [1.0, 2.0, 3.0, 4.0, 5.0]
    lower = [0.0, 2.5, 3.0, -math.inf, 6.0]
    upper = [2.0, 3.0, 3.0, math.inf, 7.0]
    # in, out (below), in (on both closed ends), in (unbounded), out (below) -> 3/5
    assert coverage(actual, lower, upper) == pytest.approx(0.6)


# ---------------------------------------------------------------- properties on random data

SEEDS = [0, 1, 2, 3, 4]


def random_walk(seed: int, n: int = 200, start: float = 100.0) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    return start + np.cumsum(rng.normal(0.0, 1.0, size=n))


@pytest.mark.parametrize("seed", SEEDS)
def test_rmse_bounds_mae_and_both_are_symmetric(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, p = rng.normal(size=50), rng.normal(size=50)
    assert rmse(a, p) >= mae(a, p) > 0.0
    assert rmse(a, p) == pytest.approx(rmse(p, a))
    assert mae(a, p) == pytest.approx(mae(p, a))
    # equal absolute errors everywhere: RMSE == MAE
    assert rmse(a, a + np.where(a > 0, 0.3, -0.3)) == pytest.approx(mae(a, a + 0.3))


@pytest.mark.parametrize("seed", SEEDS)
def test_perfect_forecast_scores(seed: int) -> None:
    y = random_walk(seed)
    train, test = y[:150], y[150:]
    assert rmse(test, test) == 0.0
    assert mae(test, test) == 0.0
    assert mape(test, test) == 0.0
    assert r2(test, test) == 1.0
    assert mase(test, test, naive_scale(train)) == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_r2_of_the_mean_is_zero_and_worse_than_the_mean_is_negative(seed: int) -> None:
    a = np.random.default_rng(seed).normal(size=40)
    assert r2(a, np.full_like(a, a.mean())) == pytest.approx(0.0, abs=1e-12)
    assert r2(a, -a) < 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_in_sample_one_step_naive_has_mase_one(seed: int) -> None:
    # the MASE scale *is* the in-sample one-step naive MAE, so that forecast scores exactly 1
    y = random_walk(seed)
    assert mase(y[1:], y[:-1], naive_scale(y)) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_naive_forecast_has_u2_one_and_direction_one_half(seed: int) -> None:
    y = random_walk(seed)
    origins = np.arange(100, 190)
    reference = y[origins]
    actual = y[origins + 1]
    naive = reference.copy()
    assert theil_u2(actual, naive, naive) == pytest.approx(1.0)
    assert directional_accuracy(actual, naive, reference) == 0.5
    # the perfect forecast calls every move (a continuous walk never stays put)
    assert directional_accuracy(actual, actual, reference) == 1.0
    # the mirror image of the move calls every one wrong
    assert directional_accuracy(actual, 2 * reference - actual, reference) == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_scale_behaviour(seed: int) -> None:
    # RMSE/MAE are in data units; MAPE, R2, MASE, U2 and direction are unit-free
    y = random_walk(seed)
    rng = np.random.default_rng(seed + 100)
    train, actual = y[:150], y[150:]
    reference = y[149:-1]
    predicted = actual + rng.normal(0, 0.5, size=actual.size)
    c = 3.7
    assert rmse(c * actual, c * predicted) == pytest.approx(c * rmse(actual, predicted))
    assert mae(c * actual, c * predicted) == pytest.approx(c * mae(actual, predicted))
    assert mape(c * actual, c * predicted) == pytest.approx(mape(actual, predicted))
    assert r2(c * actual, c * predicted) == pytest.approx(r2(actual, predicted))
    assert mase(c * actual, c * predicted, naive_scale(c * train)) == pytest.approx(
        mase(actual, predicted, naive_scale(train))
    )
    assert theil_u2(c * actual, c * predicted, c * reference) == pytest.approx(
        theil_u2(actual, predicted, reference)
    )
    shifted = directional_accuracy(c * actual + 5, c * predicted + 5, c * reference + 5)
    assert shifted == directional_accuracy(actual, predicted, reference)


@pytest.mark.parametrize("seed", SEEDS)
def test_coverage_grows_with_nested_intervals(seed: int) -> None:
    rng = np.random.default_rng(seed)
    actual = rng.normal(size=500)
    previous = -1.0
    for half_width in (0.0, 0.5, 1.0, 2.0, math.inf):
        share = coverage(actual, -np.full(500, half_width), np.full(500, half_width))
        assert 0.0 <= share <= 1.0
        assert share >= previous
        previous = share
    assert previous == 1.0


def test_two_dimensional_inputs_score_every_cell() -> None:
    # (origins, steps) arrays are flattened: same figure as the 1-D concatenation
    a = np.array([[1.0, 2.0], [3.0, 5.0]])
    p = np.array([[1.0, 3.0], [1.0, 5.0]])
    assert rmse(a, p) == pytest.approx(rmse(a.ravel(), p.ravel()))
    # errors 0, -1, 2, 0 -> MAE 3/4
    assert mae(a, p) == pytest.approx(0.75)


# ---------------------------------------------------------------- input checks

Pairwise = Callable[[Any, Any], float]
PAIRWISE: list[tuple[str, Pairwise]] = [
    ("rmse", rmse),
    ("mae", mae),
    ("mape", mape),
    ("r2", r2),
    ("mase", lambda a, p: mase(a, p, 1.0)),
    ("theil_u2", lambda a, p: theil_u2(a, p, [9.0] * len(a))),
    ("directional_accuracy", lambda a, p: directional_accuracy(a, p, [10.0] * len(a))),
]


@pytest.mark.parametrize(("name", "metric"), PAIRWISE, ids=[name for name, _ in PAIRWISE])
def test_pairwise_metrics_reject_bad_input(name: str, metric: Pairwise) -> None:
    with pytest.raises(MetricInputError, match="actual: is empty"):
        metric([], [])
    with pytest.raises(MetricInputError, match=r"predicted: contains NaN \(1 of 3\)"):
        metric([1.0, 2.0, 3.0], [1.0, math.nan, 3.0])
    with pytest.raises(MetricInputError, match="actual: contains NaN"):
        metric([math.nan, 2.0, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(MetricInputError, match=r"shape \(2,\) does not match actual shape \(3,\)"):
        metric([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(MetricInputError, match="infinite"):
        metric([1.0, 2.0, 3.0], [1.0, math.inf, 3.0])
    with pytest.raises(MetricInputError, match="not numeric"):
        metric(["a", "b"], [1.0, 2.0])


def test_metric_input_error_is_a_value_error_naming_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^predicted: is empty$") as caught:
        rmse([1.0], [])
    assert isinstance(caught.value, MetricInputError)
    assert caught.value.name == "predicted"


def test_mape_refuses_zero_actuals() -> None:
    with pytest.raises(MetricInputError, match=r"MAPE is undefined: 1 actual value\(s\) are 0"):
        mape([0.0, 1.0], [0.5, 1.0])


@pytest.mark.parametrize(
    ("train", "lag", "message"),
    [
        ([5.0, 5.0, 5.0], 1, "is constant"),
        ([5.0], 1, "needs more than 1 value"),
        ([1.0, 2.0], 2, "needs more than 2 value"),
        ([[1.0, 2.0], [3.0, 4.0]], 1, r"must be 1-D, got shape \(2, 2\)"),
        ([1.0, math.nan, 2.0], 1, "contains NaN"),
        ([1.0, 2.0, 3.0], 0, "lag: must be a positive integer"),
        ([1.0, 2.0, 3.0], True, "lag: must be a positive integer"),
    ],
)
def test_naive_scale_rejects(train: list[Any], lag: int, message: str) -> None:
    with pytest.raises(MetricInputError, match=message):
        naive_scale(train, lag=lag)


@pytest.mark.parametrize("scale", [0.0, -1.0, math.nan, math.inf])
def test_mase_rejects_a_bad_scale(scale: float) -> None:
    with pytest.raises(MetricInputError, match="scale: must be a finite positive number"):
        mase([1.0, 2.0], [1.0, 2.0], scale)


def test_theil_u2_refuses_an_exact_naive_forecast() -> None:
    with pytest.raises(MetricInputError, match="zero error"):
        theil_u2([1.0, 2.0], [1.5, 2.0], [1.0, 2.0])
    with pytest.raises(MetricInputError, match="naive_predicted: shape"):
        theil_u2([1.0, 2.0], [1.5, 2.0], [1.0])


def test_directional_accuracy_rejects_a_reference_of_the_wrong_shape() -> None:
    with pytest.raises(MetricInputError, match="reference: shape"):
        directional_accuracy([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(MetricInputError, match="reference: shape"):
        directional_accuracy([[1.0, 2.0]], [[1.0, 2.0]], [1.0, 2.0])


def test_coverage_rejects_crossed_or_nan_bounds() -> None:
    with pytest.raises(MetricInputError, match=r"lower: is above upper in 1 position\(s\)"):
        coverage([1.0, 2.0], [0.0, 3.0], [2.0, 2.5])
    with pytest.raises(MetricInputError, match="upper: contains NaN"):
        coverage([1.0, 2.0], [0.0, 1.0], [2.0, math.nan])
    with pytest.raises(MetricInputError, match="actual: contains an infinite value"):
        coverage([math.inf, 2.0], [0.0, 1.0], [2.0, 3.0])


# ---------------------------------------------------------------- Diebold-Mariano by hand

# e_model = [1, -2, 3, 0, 2], e_base = [1, 1, -1, 1, 0]
# d = e_model^2 - e_base^2 = [1-1, 4-1, 9-1, 0-1, 4-0] = [0, 3, 8, -1, 4]; mean 14/5 = 2.8
# d - mean = [-2.8, 0.2, 5.2, -3.8, 1.2]
# gamma_0 = (7.84 + 0.04 + 27.04 + 14.44 + 1.44) / 5 = 50.8 / 5 = 10.16
E_MODEL = [1.0, -2.0, 3.0, 0.0, 2.0]
E_BASE = [1.0, 1.0, -1.0, 1.0, 0.0]


def test_diebold_mariano_by_hand_h1() -> None:
    # V = gamma_0 / n = 10.16 / 5 = 2.032;  DM = 2.8 / sqrt(2.032)
    # HLN factor sqrt((n + 1 - 2h + h(h-1)/n) / n) = sqrt((5 + 1 - 2 + 0) / 5) = sqrt(0.8)
    # DM* = sqrt(2.8^2 / 2.032 * 0.8) = sqrt(3.0866...) = 1.75688, compared with t(4)
    result = diebold_mariano(E_MODEL, E_BASE, horizon=1)
    expected = math.sqrt(7.84 / 2.032 * 0.8)
    assert result.n == 5
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.p_one_sided_worse == pytest.approx(1.0 - t4_cdf(expected), rel=1e-9)
    assert result.p_two_sided == pytest.approx(2.0 * (1.0 - t4_cdf(expected)), rel=1e-9)
    assert result.p_one_sided_worse == pytest.approx(0.0769, abs=1e-4)
    assert not result.variance_fallback


def test_diebold_mariano_by_hand_h2_uses_the_lag_one_autocovariance() -> None:
    # gamma_1 = (0.2*-2.8 + 5.2*0.2 + -3.8*5.2 + 1.2*-3.8) / 5
    #         = (-0.56 + 1.04 - 19.76 - 4.56) / 5 = -23.84 / 5 = -4.768
    # V = (gamma_0 + 2 gamma_1) / n = (10.16 - 9.536) / 5 = 0.1248
    # HLN: (5 + 1 - 4 + 2*1/5) / 5 = 2.4 / 5 = 0.48;  DM* = sqrt(7.84 / 0.1248 * 0.48) = 5.4913
    result = diebold_mariano(E_MODEL, E_BASE, horizon=2)
    expected = math.sqrt(7.84 / 0.1248 * 0.48)
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.p_one_sided_worse == pytest.approx(1.0 - t4_cdf(expected), rel=1e-6)
    assert not result.variance_fallback


def test_diebold_mariano_falls_back_to_h1_on_a_negative_long_run_variance() -> None:
    # d = [4, 0, 4, 0, 4], mean 2.4, d - mean = [1.6, -2.4, 1.6, -2.4, 1.6]
    # gamma_0 = (3 * 2.56 + 2 * 5.76) / 5 = 3.84; gamma_1 = 4 * (1.6 * -2.4) / 5 = -3.072
    # gamma_0 + 2 gamma_1 = -2.304 < 0  ->  redo with h = 1:
    # V = 3.84 / 5 = 0.768, HLN sqrt(0.8): DM* = sqrt(2.4^2 / 0.768 * 0.8) = sqrt(6)
    result = diebold_mariano([2.0, 0.0, 2.0, 0.0, 2.0], [0.0] * 5, horizon=2)
    assert result.variance_fallback
    assert result.statistic == pytest.approx(math.sqrt(6.0), rel=1e-12)
    assert result.p_one_sided_worse == pytest.approx(1.0 - t4_cdf(math.sqrt(6.0)), rel=1e-9)


def test_diebold_mariano_identical_errors_are_degenerate_not_a_division_by_zero() -> None:
    errors = [0.5, -1.0, 2.0, 0.1]
    result = diebold_mariano(errors, errors, horizon=1)
    assert result == DieboldMariano(
        statistic=0.0, p_two_sided=1.0, p_one_sided_better=0.5, p_one_sided_worse=0.5, n=4
    )
    # same squared loss with opposite signs is just as identical
    assert diebold_mariano(errors, [-e for e in errors], horizon=2).p_two_sided == 1.0


def test_diebold_mariano_constant_nonzero_differential_is_decisive() -> None:
    # d = 4 - 1 = 3 every time: no variance, but the model is always worse
    worse = diebold_mariano([2.0, -2.0, 2.0], [1.0, 1.0, -1.0], horizon=1)
    assert worse.statistic == math.inf
    assert (worse.p_two_sided, worse.p_one_sided_worse) == (0.0, 0.0)
    better = diebold_mariano([1.0, 1.0, -1.0], [2.0, -2.0, 2.0], horizon=1)
    assert better.statistic == -math.inf
    assert (better.p_two_sided, better.p_one_sided_worse) == (0.0, 1.0)
    assert (better.p_one_sided_better, worse.p_one_sided_better) == (0.0, 1.0)
    as_json = json.dumps(worse.to_dict(), allow_nan=False)
    assert json.loads(as_json)["statistic"] is None


def test_diebold_mariano_survives_an_underflowing_variance() -> None:
    # squared errors ~1e-320 are subnormal: d varies, but its variance underflows to 0.0
    result = diebold_mariano([1e-160, 2e-160, 1e-160, 2e-160], [0.0] * 4, horizon=2)
    assert result.statistic == math.inf
    assert result.p_one_sided_worse == 0.0


@pytest.mark.parametrize(
    ("e_model", "e_base", "horizon", "message"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 0, "horizon: must be a positive integer"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], True, "horizon: must be a positive integer"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 3, "needs more than horizon = 3 values, got 3"),
        ([1.0], [2.0], 1, "needs more than horizon = 1 values, got 1"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], 1, "errors_baseline: shape"),
        ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]], 1, "must be 1-D"),
        ([1.0, math.nan, 3.0], [1.0, 2.0, 3.0], 1, "errors_model: contains NaN"),
        ([], [], 1, "errors_model: is empty"),
    ],
)
def test_diebold_mariano_rejects(
    e_model: list[Any], e_base: list[Any], horizon: int, message: str
) -> None:
    with pytest.raises(MetricInputError, match=message):
        diebold_mariano(e_model, e_base, horizon)


# ---------------------------------------------------------------- Diebold-Mariano properties


def overlapping_errors(rng: np.random.Generator, n: int, horizon: int) -> np.ndarray[Any, Any]:
    """Errors of n overlapping h-step forecasts from daily origins: each is the sum of the h
    shocks it did not see, so neighbours share h-1 shocks (an MA(h-1) series)."""
    shocks = rng.standard_normal(n + horizon - 1)
    return np.convolve(shocks, np.ones(horizon), mode="valid")


def test_a_clearly_worse_model_is_flagged_and_identical_models_are_not() -> None:
    rng = np.random.default_rng(20240611)
    prices = 100.0 + np.cumsum(rng.normal(0.0, 1.0, size=251))
    naive_errors = np.diff(prices)  # the last close as forecast misses by the next move
    # a model whose errors carry the naive error plus as much noise again
    worse_errors = naive_errors + rng.normal(0.0, 1.0, size=naive_errors.size)
    worse = diebold_mariano(worse_errors, naive_errors, horizon=1)
    assert worse.statistic > 0.0
    assert worse.p_one_sided_worse < 0.05
    assert worse.p_two_sided < 0.1

    same = diebold_mariano(naive_errors, naive_errors.copy(), horizon=1)
    assert same.p_two_sided == pytest.approx(1.0)
    assert same.p_one_sided_worse >= 0.5

    better = diebold_mariano(0.5 * naive_errors, naive_errors, horizon=1)
    assert better.p_one_sided_worse > 0.95
    # the test a model must pass to be served: its loss is significantly lower
    assert better.p_one_sided_better < 0.05
    assert better.p_one_sided_better == pytest.approx(1.0 - better.p_one_sided_worse)


@pytest.mark.parametrize("seed", SEEDS)
def test_one_and_two_sided_p_values_agree_and_swapping_models_mirrors(seed: int) -> None:
    rng = np.random.default_rng(seed)
    e1 = overlapping_errors(rng, 60, 3)
    e2 = 1.1 * overlapping_errors(rng, 60, 3)
    forward = diebold_mariano(e1, e2, horizon=3)
    backward = diebold_mariano(e2, e1, horizon=3)
    one_sided = forward.p_one_sided_worse
    assert forward.p_two_sided == pytest.approx(2.0 * min(one_sided, 1.0 - one_sided), abs=1e-12)
    assert backward.statistic == pytest.approx(-forward.statistic)
    assert backward.p_two_sided == pytest.approx(forward.p_two_sided)
    assert backward.p_one_sided_worse == pytest.approx(1.0 - one_sided)


@pytest.mark.parametrize(("horizon", "n"), [(1, 100), (5, 250)])
def test_size_under_equal_accuracy_is_close_to_nominal(horizon: int, n: int) -> None:
    # Two models with equally accurate, independent h-step errors: the test should reject at
    # 5 % about 5 % of the time. 1000 replications: binomial sd 0.007, so [0.03, 0.085] is
    # about -3 to +5 sd (the HAC variance with h-1 lags is known to run slightly oversized).
    rng = np.random.default_rng(1000 + horizon)
    rejections = sum(
        diebold_mariano(
            overlapping_errors(rng, n, horizon), overlapping_errors(rng, n, horizon), horizon
        ).p_two_sided
        < 0.05
        for _ in range(1000)
    )
    assert 0.03 <= rejections / 1000 <= 0.085


def test_ignoring_the_horizon_overrejects_on_overlapping_errors() -> None:
    # The same 5-step errors tested as if they were 1-step: without the lag-1..4 autocovariances
    # the variance is far too small and the test rejects a true null several times too often.
    rng = np.random.default_rng(99)
    pairs = [(overlapping_errors(rng, 250, 5), overlapping_errors(rng, 250, 5)) for _ in range(500)]
    with_lags = np.mean([diebold_mariano(a, b, 5).p_two_sided < 0.05 for a, b in pairs])
    without = np.mean([diebold_mariano(a, b, 1).p_two_sided < 0.05 for a, b in pairs])
    assert with_lags < 0.09
    assert without > 0.15
