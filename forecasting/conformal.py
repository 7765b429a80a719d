"""Split-conformal prediction intervals: per-horizon-step half-widths from validation residuals.

Given absolute residuals ``|y - yhat|`` of ``n`` held-out forecasts (never the training windows),
the ``ceil((n + 1) * level)``-th smallest residual of each horizon step is a half-width ``q`` such
that ``[yhat - q, yhat + q]`` covers a new, exchangeable observation with probability at least
``level`` (Vovk, Gammerman & Shafer 2005; Lei, G'Sell, Rinaldo, Tibshirani & Wasserman 2018,
"Distribution-free predictive inference for regression", section 2.2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
from numpy.typing import ArrayLike

from forecasting.metrics import FloatArray, MetricInputError, as_float_array

#: The interval levels the service publishes: 80 % and 95 %.
LEVELS: Final = (0.8, 0.95)

# (n + 1) * level in binary floating point can land a hair above an integer (100 * 0.07 gives
# 7.000000000000001), which would push the rank one residual too far; this absorbs that.
_RANK_TOLERANCE: Final = 1e-9


def conformal_rank(n: int, level: float) -> int:
    """The 1-based rank ``ceil((n + 1) * level)`` of the residual that bounds ``level`` coverage.

    A rank above ``n`` means ``n`` calibration residuals cannot bound that level (for 95 % one
    needs ``n >= 19``); :func:`conformal_quantiles` then returns an infinite half-width.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise MetricInputError("n", f"must be a positive integer, got {n!r}")
    return max(1, math.ceil((n + 1) * _level_value(level) - _RANK_TOLERANCE))


def _level_value(level: float) -> float:
    """``level`` as a float in (0, 1); numpy scalars pass, booleans and strings do not."""
    try:
        value = math.nan if isinstance(level, bool | str | bytes) else float(level)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 < value < 1.0:
        raise MetricInputError("level", f"must be strictly between 0 and 1, got {level!r}")
    return value


def conformal_quantiles(
    abs_residuals: ArrayLike, levels: Sequence[float] = LEVELS
) -> dict[float, FloatArray]:
    """Per-step split-conformal half-widths for each level.

    ``abs_residuals`` has shape ``(n, H)``: ``n`` calibration forecasts, ``H`` horizon steps, each
    entry ``|actual - predicted|`` (non-negative, finite). Returns ``{level: array of shape (H,)}``
    holding, per column, the ``ceil((n + 1) * level)``-th smallest residual, or ``inf`` where that
    rank exceeds ``n``. Steps are calibrated separately because errors grow with the horizon.
    """
    residuals = as_float_array("abs_residuals", abs_residuals)
    if residuals.ndim != 2:
        raise MetricInputError(
            "abs_residuals", f"must be 2-D (n forecasts, H steps), got shape {residuals.shape}"
        )
    if (residuals < 0.0).any():
        raise MetricInputError("abs_residuals", "contains negative values: pass |actual - pred|")
    if len(levels) == 0:
        raise MetricInputError("levels", "is empty")
    n, steps = residuals.shape
    ordered = np.sort(residuals, axis=0)
    quantiles: dict[float, FloatArray] = {}
    for level in levels:
        key = _level_value(level)
        rank = conformal_rank(n, key)
        if rank > n:
            quantiles[key] = np.full(steps, np.inf, dtype=np.float64)
        else:
            quantiles[key] = ordered[rank - 1].copy()
    return quantiles
