"""Scoring the backtest's candidates on the same out-of-sample origins: point accuracy (on log
returns and on prices), interval and distribution scores, coverage by fold and by volatility
tercile with the Kupiec and Christoffersen tests, and Diebold-Mariano tests whose p-values name
their sidedness.

Log-return figures are in percent (log return x 100) so they compare across symbols and eras:
interval scores, pinball loss and CRPS are in percentage points of cumulative log return.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from forecasting import metrics, scores
from forecasting.candidates import CandidateIntervals
from forecasting.forecast import INTERVAL_LEVELS
from forecasting.metrics import FloatArray, diebold_mariano_losses

#: Log returns are scored in percent.
PERCENT: Final = 100.0
TERCILE_NAMES: Final = ("low", "mid", "high")


def json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def level_key(level: float) -> str:
    """``0.8`` -> ``"80"``: the suffix of ``coverage_80`` and friends."""
    return str(round(level * 100))


def point_loss(actual: FloatArray, center: FloatArray) -> FloatArray:
    """The gate's one loss for point forecasts: each origin's squared error of the cumulative
    log return (percent squared), averaged over its H steps."""
    loss: FloatArray = np.mean((PERCENT * (actual - center)) ** 2, axis=1)
    return loss


def interval_loss(candidate: CandidateIntervals, actual: FloatArray) -> FloatArray:
    """Each origin's interval score (percent), the mean of the 80% and 95% scores over its H
    steps: the loss the interval DM tests compare."""
    total = np.zeros(actual.shape[0])
    for level in INTERVAL_LEVELS:
        lower, upper = candidate.bounds(level)
        total += np.mean(
            scores.interval_scores(PERCENT * actual, PERCENT * lower, PERCENT * upper, level),
            axis=1,
        )
    loss: FloatArray = total / len(INTERVAL_LEVELS)
    return loss


def dm_test(loss_model: FloatArray, loss_baseline: FloatArray, horizon: int) -> dict[str, Any]:
    """HLN-corrected DM with lag ``horizon - 1`` on per-origin losses, as a JSON-safe dict with
    ``p_two_sided``, ``p_one_sided_better`` (the model's loss is lower) and ``p_one_sided_worse``."""
    return diebold_mariano_losses(loss_model, loss_baseline, horizon).to_dict()


@dataclass(frozen=True, kw_only=True)
class ScoringContext:
    """What every candidate is scored against: the actual cumulative log returns (n, H), the
    closes at the origins, each origin's MASE scale (n, H), fold and volatility tercile."""

    actual: FloatArray
    last_close: FloatArray
    mase_scale: FloatArray
    fold_of_origin: np.ndarray[Any, np.dtype[np.int64]]
    tercile_of_origin: np.ndarray[Any, np.dtype[np.int64]]

    @property
    def horizon(self) -> int:
        return int(self.actual.shape[1])


def point_figures(center: FloatArray, context: ScoringContext) -> dict[str, float]:
    """MASE (log returns, in-sample h-step naive scale) and Theil's U2 (RMSE of log returns over
    naive's) plus, on prices, RMSE, MAE, MAPE, R² and directional accuracy."""
    actual = context.actual
    prices = context.last_close[:, None] * np.exp(actual)
    predicted = context.last_close[:, None] * np.exp(center)
    naive_error = float(np.sqrt(np.mean(actual**2)))
    return {
        "mase": scores.mase_log_returns(actual, center, context.mase_scale),
        "theil_u2": float(np.sqrt(np.mean((actual - center) ** 2))) / naive_error
        if naive_error > 0.0
        else math.nan,
        "directional_accuracy": metrics.directional_accuracy(prices, predicted, context.last_close),
        "rmse": metrics.rmse(prices, predicted),
        "mae": metrics.mae(prices, predicted),
        "mape": metrics.mape(prices, predicted),
        "r2": metrics.r2(prices.ravel(), predicted.ravel()),
        "mse_log_pct": float(np.mean(point_loss(actual, center))),
    }


def point_per_step(center: FloatArray, context: ScoringContext) -> list[dict[str, float]]:
    """:func:`point_figures` for each horizon step on its own."""
    out = []
    for h in range(context.horizon):
        columns = slice(h, h + 1)
        step_context = ScoringContext(
            actual=context.actual[:, columns],
            last_close=context.last_close,
            mase_scale=context.mase_scale[:, columns],
            fold_of_origin=context.fold_of_origin,
            tercile_of_origin=context.tercile_of_origin,
        )
        out.append({"step": float(h + 1), **point_figures(center[:, columns], step_context)})
    return out


def interval_figures(candidate: CandidateIntervals, context: ScoringContext) -> dict[str, Any]:
    """Coverage, interval scores, pinball and CRPS (percent), mean widths, coverage per fold and
    per volatility tercile, and the coverage tests, for one candidate."""
    actual = context.actual
    out: dict[str, Any] = {}
    by_fold: dict[str, dict[str, float]] = {}
    by_tercile: dict[str, dict[str, float]] = {}
    tests: dict[str, Any] = {}
    terciles = np.asarray(TERCILE_NAMES)[context.tercile_of_origin]
    for level in INTERVAL_LEVELS:
        key = level_key(level)
        lower, upper = candidate.bounds(level)
        covered = (lower <= actual) & (actual <= upper)
        out[f"coverage_{key}"] = float(np.mean(covered))
        out[f"interval_score_{key}"] = scores.interval_score(
            PERCENT * actual, PERCENT * lower, PERCENT * upper, level
        )
        out[f"width_{key}"] = float(np.mean(PERCENT * (upper - lower)))
        by_fold[key] = scores.coverage_by_group(covered, context.fold_of_origin)
        by_tercile[key] = scores.coverage_by_group(covered, terciles)
        tests[key] = scores.coverage_tests(~covered, level)
        out[f"kupiec_min_p_{key}"] = tests[key]["min_kupiec_p"]
        out[f"kupiec_p_step1_{key}"] = tests[key]["step_1"]["kupiec"]["p_value"]
    quantiles = {tau: PERCENT * q for tau, q in candidate.quantile_forecasts().items()}
    out["pinball"] = scores.pinball_loss(PERCENT * actual, quantiles)
    out["crps"] = scores.crps_from_quantiles(PERCENT * actual, quantiles)
    out["coverage_by_fold"] = by_fold
    out["coverage_by_tercile"] = by_tercile
    out["coverage_tests"] = tests
    return out


def per_origin_losses(
    candidates: Mapping[str, CandidateIntervals], actual: FloatArray
) -> dict[str, FloatArray]:
    return {name: interval_loss(candidate, actual) for name, candidate in candidates.items()}
