"""Split-conformal half-widths: the finite-sample rank by hand and coverage on synthetic noise."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from forecasting.conformal import (
    DEFAULT_GAMMA,
    LEVELS,
    SAFETY_FACTOR,
    TRACKED_LEVELS,
    CalibrationState,
    InvalidCalibrationStateError,
    conformal_quantiles,
    conformal_rank,
    run_adaptive,
)
from forecasting.metrics import MetricInputError, coverage


def test_levels_are_80_and_95_percent() -> None:
    assert LEVELS == (0.8, 0.95)


def test_quantiles_by_hand_on_a_tiny_array() -> None:
    # n = 9 calibration forecasts, 2 horizon steps
    residuals = np.array(
        [
            [0.5, 9.0],
            [0.1, 1.0],
            [0.4, 8.0],
            [0.2, 2.0],
            [0.3, 7.0],
            [0.9, 3.0],
            [0.7, 6.0],
            [0.8, 4.0],
            [0.6, 5.0],
        ]
    )
    # 80 %: rank ceil((9 + 1) * 0.8) = 8 -> 8th smallest of 0.1..0.9 is 0.8, of 1..9 is 8
    # 95 %: rank ceil(10 * 0.95) = ceil(9.5) = 10 > 9 -> cannot be bounded: inf
    # 50 %: rank ceil(10 * 0.5) = 5 -> 0.5 and 5
    quantiles = conformal_quantiles(residuals, levels=(0.8, 0.95, 0.5))
    assert set(quantiles) == {0.8, 0.95, 0.5}
    np.testing.assert_array_equal(quantiles[0.8], [0.8, 8.0])
    np.testing.assert_array_equal(quantiles[0.95], [math.inf, math.inf])
    np.testing.assert_array_equal(quantiles[0.5], [0.5, 5.0])
    assert quantiles[0.8].dtype == np.float64
    assert quantiles[0.8].shape == (2,)


def test_default_levels_and_the_smallest_calibration_set_for_95() -> None:
    # 95 % needs n >= 19: rank ceil(20 * 0.95) = 19 <= 19 (the largest residual);
    # with n = 18 the rank is ceil(19 * 0.95) = ceil(18.05) = 19 > 18 -> inf
    residuals_19 = np.arange(1.0, 20.0).reshape(19, 1)
    quantiles = conformal_quantiles(residuals_19)
    assert set(quantiles) == set(LEVELS)
    assert quantiles[0.95][0] == 19.0
    # 80 %: rank ceil(20 * 0.8) = 16
    assert quantiles[0.8][0] == 16.0
    assert conformal_quantiles(residuals_19[:18])[0.95][0] == math.inf


@pytest.mark.parametrize(
    ("n", "level", "rank"),
    [
        (9, 0.8, 8),
        (9, 0.95, 10),
        (19, 0.95, 19),
        (18, 0.95, 19),
        (99, 0.8, 80),
        # 100 * 0.07 is 7.000000000000001 in binary floating point; the rank is still 7
        (99, 0.07, 7),
        (1, 0.1, 1),
    ],
)
def test_conformal_rank(n: int, level: float, rank: int) -> None:
    assert conformal_rank(n, level) == rank


def test_quantile_order_does_not_depend_on_input_order() -> None:
    rng = np.random.default_rng(3)
    residuals = np.abs(rng.normal(size=(50, 4)))
    shuffled = rng.permutation(residuals, axis=0)
    for level, q in conformal_quantiles(residuals).items():
        np.testing.assert_array_equal(q, conformal_quantiles(shuffled)[level])
    # and the input is left as it was
    assert not np.array_equal(residuals, np.sort(residuals, axis=0))


Noise = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray[Any, Any]]
NOISES: dict[str, Noise] = {
    "normal": lambda rng, shape: rng.normal(size=shape),
    "student_t3": lambda rng, shape: rng.standard_t(3, size=shape),
    "skewed": lambda rng, shape: rng.exponential(size=shape) - 1.0,
}


@pytest.mark.parametrize("noise", list(NOISES), ids=list(NOISES))
def test_coverage_on_fresh_data_is_close_to_nominal(noise: str) -> None:
    # A forecaster with errors that grow with the horizon (scale 1, 2, 4 per step). Draw 40,000
    # forecasts, calibrate on one half, and score the other half plus 200,000 fresh ones.
    # Given the calibration set, coverage is Beta(k, n + 1 - k): sd 0.0028 at 80 % and 0.0015 at
    # 95 % for n = 20,000; the test sample adds 0.0009 / 0.0005. Tolerances are about 4 sd.
    rng = np.random.default_rng(12345)
    draw = NOISES[noise]
    scales = np.array([1.0, 2.0, 4.0])
    signal = rng.normal(100.0, 10.0, size=(40_000, 3))
    actual = signal + scales * draw(rng, (40_000, 3))
    predicted = signal  # the forecaster knows the signal, not the noise
    calibration, held_out = slice(0, 20_000), slice(20_000, None)
    quantiles = conformal_quantiles(np.abs(actual[calibration] - predicted[calibration]))

    fresh_signal = rng.normal(100.0, 10.0, size=(200_000, 3))
    fresh_actual = fresh_signal + scales * draw(rng, (200_000, 3))
    tolerance = {0.8: 0.012, 0.95: 0.007}
    for level, half_width in quantiles.items():
        assert np.all(np.diff(half_width) > 0), "wider intervals for noisier steps"
        for test_actual, test_predicted in (
            (actual[held_out], predicted[held_out]),
            (fresh_actual, fresh_signal),
        ):
            for step in range(3):
                share = coverage(
                    test_actual[:, step],
                    test_predicted[:, step] - half_width[step],
                    test_predicted[:, step] + half_width[step],
                )
                assert share == pytest.approx(level, abs=tolerance[level]), (level, step)


def test_marginal_coverage_is_exactly_rank_over_n_plus_one() -> None:
    # With n = 19 calibration points the guarantee is exact: P(covered) = k / (n + 1), i.e.
    # 16/20 = 0.80 and 19/20 = 0.95 (an off-by-one rank would give 0.75/0.85 or 0.90/inf).
    # Each of 5,000 columns is an independent calibration set of 19, scored on 50 fresh points.
    # Per column, coverage is Beta(k, 20 - k): sd 0.087 (80 %) and 0.048 (95 %), so the mean
    # over 5,000 columns has sd 0.0012 / 0.0007; the tolerances are about 4 sd.
    rng = np.random.default_rng(777)
    columns = 5_000
    calibration = np.abs(rng.standard_t(4, size=(19, columns)))
    quantiles = conformal_quantiles(calibration)
    fresh = rng.standard_t(4, size=(50, columns))
    for level, tolerance in ((0.8, 0.005), (0.95, 0.003)):
        half_width = np.broadcast_to(quantiles[level], fresh.shape)
        assert coverage(fresh, -half_width, half_width) == pytest.approx(level, abs=tolerance)


def test_infinite_half_widths_cover_everything() -> None:
    quantiles = conformal_quantiles(np.ones((5, 2)))  # 95 % needs 19: inf
    half_width = np.broadcast_to(quantiles[0.95], (2, 2))
    actual = np.array([[1e9, -1e9], [0.0, 3.0]])
    assert coverage(actual, actual - half_width, actual + half_width) == 1.0
    # the 80 % half-width (rank ceil(6 * 0.8) = 5 of five ones) is finite: 1
    np.testing.assert_array_equal(quantiles[0.8], [1.0, 1.0])


@pytest.mark.parametrize(
    ("residuals", "message"),
    [
        (np.ones(10), r"must be 2-D \(n forecasts, H steps\), got shape \(10,\)"),
        (np.ones((2, 3, 4)), "must be 2-D"),
        (np.zeros((0, 3)), "abs_residuals: is empty"),
        (np.array([[0.1, -0.2]]), "contains negative values"),
        (np.array([[0.1, math.nan]]), "abs_residuals: contains NaN"),
        (np.array([[0.1, math.inf]]), "abs_residuals: contains an infinite value"),
    ],
)
def test_conformal_quantiles_rejects_bad_residuals(residuals: Any, message: str) -> None:
    with pytest.raises(MetricInputError, match=message):
        conformal_quantiles(residuals)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.2, math.nan, True, "0.8"])
def test_conformal_quantiles_rejects_bad_levels(level: Any) -> None:
    with pytest.raises(MetricInputError, match="level: must be strictly between 0 and 1"):
        conformal_quantiles(np.ones((20, 2)), levels=(0.8, level))


def test_conformal_quantiles_rejects_no_levels_and_rank_rejects_bad_n() -> None:
    with pytest.raises(MetricInputError, match="levels: is empty"):
        conformal_quantiles(np.ones((20, 2)), levels=())
    with pytest.raises(MetricInputError, match="n: must be a positive integer"):
        conformal_rank(0, 0.8)


# ------------------------------------------------------------------ adaptive conformal inference


def _state(scores: list[float], **options: Any) -> CalibrationState:
    return CalibrationState.initial(np.asarray(scores).reshape(-1, 1), **options)


def test_initial_quantiles_are_the_conformal_ranks_of_the_window() -> None:
    # 9 scores 0.1..0.9: 80% rank ceil(10 * 0.8) = 8 -> 0.8; 50% rank 5 -> 0.5; 95% rank 10 > 9
    # -> the largest score times the safety factor, never infinite
    state = _state([0.5, 0.1, 0.4, 0.2, 0.3, 0.9, 0.7, 0.8, 0.6])
    widths = state.half_widths()
    assert widths[0.8][0] == pytest.approx(0.8)
    assert widths[0.5][0] == pytest.approx(0.5)
    assert widths[0.95][0] == pytest.approx(0.9 * SAFETY_FACTOR)
    assert state.alphas[0] == tuple(pytest.approx(1 - level) for level in TRACKED_LEVELS)


def test_aci_moves_alpha_by_gamma_times_the_error_with_delayed_feedback() -> None:
    state = _state([1.0] * 30, gamma=0.01)
    index = state.levels.index(0.8)
    issued = state.quantiles(1)
    missed = state.update([state.outcome(1, 5.0, issued)])  # outside every interval
    assert missed.alphas[0][index] == pytest.approx(0.2 + 0.01 * (0.2 - 1.0))
    covered = state.update([state.outcome(1, 0.0, issued)])
    assert covered.alphas[0][index] == pytest.approx(0.2 + 0.01 * 0.2)
    assert missed.matured == covered.matured == 1
    assert missed.scores[0][-1] == 5.0 and len(missed.scores[0]) == 31


def test_alpha_stays_in_range_and_the_interval_stays_finite() -> None:
    state = _state([1.0, 2.0, 3.0] * 10, gamma=0.5)
    for _ in range(20):
        state = state.update([state.outcome(1, 100.0, state.quantiles(1))])
    assert all(0.0 <= a <= 1.0 for a in state.alphas[0])
    assert state.quantiles(1).max() == pytest.approx(100.0 * SAFETY_FACTOR)
    assert np.isfinite(state.quantiles(1)).all()


def test_quantiles_never_shrink_as_the_level_grows() -> None:
    state = _state(list(np.linspace(0.1, 3.0, 40)), gamma=0.3)
    # push the 80% level's alpha up (hits) and leave the 90% level's where it was
    for _ in range(5):
        state = state.update([state.outcome(1, 0.0, state.quantiles(1))])
    widths = state.quantiles(1)
    assert (np.diff(widths) >= 0).all()


def test_the_window_keeps_the_most_recent_scores() -> None:
    state = _state([0.1] * 5, window=5)
    state = state.update([state.outcome(1, 9.0, state.quantiles(1))])
    assert state.scores[0] == (0.1, 0.1, 0.1, 0.1, 9.0)


def test_feedback_arrives_only_once_the_target_matured() -> None:
    """Origin i's step-h outcome is fed back just before origin i + h: changing it leaves every
    earlier issued interval as it was."""
    rng = np.random.default_rng(3)
    scores = rng.exponential(1.0, size=(40, 3))
    state = CalibrationState.initial(rng.exponential(1.0, size=(30, 3)), gamma=0.05)
    issued, _ = run_adaptive(state, scores)
    changed = scores.copy()
    changed[10, 2] = 50.0  # origin 10, step 3: matures at origin 13
    again, _ = run_adaptive(state, changed)
    assert np.array_equal(again[:13], issued[:13])
    assert not np.array_equal(again[13:, 2], issued[13:, 2])


def test_the_state_survives_json_and_a_restart_continues_where_it_stopped() -> None:
    rng = np.random.default_rng(4)
    state = CalibrationState.initial(rng.exponential(1.0, size=(50, 2)))
    outcomes = [
        state.outcome(1 + k % 2, float(rng.exponential()), state.quantiles(1 + k % 2))
        for k in range(20)
    ]
    straight = state.update(outcomes)
    stored = json.loads(json.dumps(state.update(outcomes[:7]).to_dict()))
    restarted = CalibrationState.from_dict(stored).update(outcomes[7:])
    assert restarted == straight


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"window": 0}, "window"),
        ({"alphas": [[0.2], [1.5]]}, "bad alphas"),
        ({"scores": [[-1.0], [1.0]]}, "bad score"),
        ({"levels": [0.95, 0.8]}, "ascending"),
        ({"gamma": 2.0}, "gamma"),
    ],
)
def test_a_broken_stored_state_is_refused(change: dict[str, Any], message: str) -> None:
    data = CalibrationState.initial(np.ones((5, 2)), levels=(0.8,)).to_dict()
    data.update(change)
    with pytest.raises(InvalidCalibrationStateError, match=message):
        CalibrationState.from_dict(data)
    with pytest.raises(InvalidCalibrationStateError, match="unreadable"):
        CalibrationState.from_dict({"levels": [0.8]})


def _garch_with_a_break(seed: int, rows: int = 1700, brk: int = 1200) -> np.ndarray[Any, Any]:
    """Closes of a GARCH(1,1)-t process whose variance jumps ninefold (volatility x3) at
    ``brk`` and stays there: the regime the calibration never saw."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta, nu = 0.02, 0.09, 0.89, 6.0
    variance = omega / (1 - alpha - beta)
    returns = np.empty(rows)
    for t in range(rows):
        if t == brk:
            variance *= 9.0
        shock = rng.standard_t(nu) * np.sqrt((nu - 2) / nu)
        returns[t] = np.sqrt(variance) * shock
        variance = (9.0 * omega if t >= brk else omega) + alpha * returns[t] ** 2 + beta * variance
    return 100.0 * np.exp(np.cumsum(returns / 100.0))


def _coverage_after_break(scale: Any, gamma: float) -> float:
    """Step-1 coverage of the 80% interval over the 100 origins after the break, pooled over
    four simulated series; 250 calibration origins, then online."""
    hits = []
    for seed in range(4):
        closes = _garch_with_a_break(seed)
        origins = np.arange(700, 1600)
        actual = np.log(closes[origins + 1] / closes[origins])[:, None]
        scores = np.abs(actual) / scale.sigma(closes, origins, 1)
        state = CalibrationState.initial(scores[:250], gamma=gamma)
        issued, _ = run_adaptive(state, scores[250:])
        covered = scores[250:, 0] <= issued[:, 0, state.levels.index(0.8)]
        after = 1200 - 700 - 250
        hits.append(covered[after : after + 100])
    return float(np.mean(np.concatenate(hits)))


def test_aci_restores_coverage_after_a_volatility_break_where_split_conformal_does_not() -> None:
    from forecasting.volatility import EwmaScale, FixedScale

    served = _coverage_after_break(EwmaScale(), DEFAULT_GAMMA)  # normalised scores + ACI
    split = _coverage_after_break(FixedScale(), 0.0)  # plain split conformal
    aci_alone = _coverage_after_break(FixedScale(), 0.05)  # ACI on unnormalised scores
    assert abs(served - 0.8) <= 0.10, served
    assert abs(aci_alone - 0.8) <= 0.10, aci_alone
    assert split < 0.70, split
