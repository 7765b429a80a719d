"""Probabilistic scores and coverage tests, in plain numpy/scipy, in the style of
:mod:`forecasting.metrics` (validated inputs, floats out).

- Interval (Winkler) score at level ``1 - a``: ``(u - l) + (2/a)(l - y)1[y < l] + (2/a)(y - u)
  1[y > u]`` (Gneiting & Raftery 2007, section 6.2): lower is better; it rewards narrow intervals
  and charges misses in proportion to their size.
- Pinball (quantile) loss and CRPS from quantiles: ``CRPS = 2 * integral of the pinball loss
  over levels``, approximated by ``2 * mean`` over an evenly spaced grid of 19 levels (Gneiting &
  Raftery 2007, eq. 17; Laio & Tamea 2007): within 5% of the exact CRPS for a normal forecast,
  and the same rule for every model compared.
- Kupiec's proportion-of-failures test (1995) and Christoffersen's independence and
  conditional-coverage tests (1998), likelihood-ratio tests on a sequence of misses.
- MASE on log returns, scaled by the in-sample h-step naive error (Hyndman & Koehler 2006).

The backtest scores cumulative log returns times 100 (percent), so interval scores, pinball
losses and CRPS compare across symbols and eras; their readers say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike

from forecasting.metrics import FloatArray, MetricInputError, as_float_array

#: The quantile levels pinball loss and CRPS average over: 0.05, 0.10, ..., 0.95.
QUANTILE_GRID: Final = tuple(round(0.05 * k, 2) for k in range(1, 20))


def _level(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, float | int) or not 0.0 < value < 1.0:
        raise MetricInputError(name, f"must be strictly between 0 and 1, got {value!r}")
    return float(value)


def _same_shape(arrays: Mapping[str, FloatArray]) -> None:
    shapes = {name: array.shape for name, array in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise MetricInputError("shapes", f"must all match, got {shapes}")


def interval_scores(
    actual: ArrayLike, lower: ArrayLike, upper: ArrayLike, level: float
) -> FloatArray:
    """The interval score of each forecast (elementwise), for a central interval of ``level``."""
    y = as_float_array("actual", actual)
    lo = as_float_array("lower", lower)
    hi = as_float_array("upper", upper)
    _same_shape({"actual": y, "lower": lo, "upper": hi})
    if (lo > hi).any():
        raise MetricInputError("lower", "is above upper somewhere")
    a = 1.0 - _level("level", level)
    below = np.where(y < lo, lo - y, 0.0)
    above = np.where(y > hi, y - hi, 0.0)
    result: FloatArray = (hi - lo) + (2.0 / a) * (below + above)
    return result


def interval_score(actual: ArrayLike, lower: ArrayLike, upper: ArrayLike, level: float) -> float:
    """Mean interval score (units of ``actual``)."""
    return float(np.mean(interval_scores(actual, lower, upper, level)))


def pinball_losses(actual: ArrayLike, quantiles: Mapping[float, ArrayLike]) -> FloatArray:
    """The pinball loss of each forecast averaged over the given quantile levels.

    ``quantiles`` maps a level ``tau`` to the forecast ``tau``-quantiles (shape of ``actual``);
    the loss is ``(tau - 1[y < q]) (y - q)``.
    """
    y = as_float_array("actual", actual)
    if not quantiles:
        raise MetricInputError("quantiles", "is empty")
    total = np.zeros_like(y)
    for tau, values in quantiles.items():
        q = as_float_array(f"quantiles[{tau}]", values)
        _same_shape({"actual": y, f"quantiles[{tau}]": q})
        level = _level("quantile level", tau)
        diff = y - q
        total += np.maximum(level * diff, (level - 1.0) * diff)
    result: FloatArray = total / len(quantiles)
    return result


def pinball_loss(actual: ArrayLike, quantiles: Mapping[float, ArrayLike]) -> float:
    """Mean pinball loss over forecasts and levels."""
    return float(np.mean(pinball_losses(actual, quantiles)))


def crps_from_quantiles(actual: ArrayLike, quantiles: Mapping[float, ArrayLike]) -> float:
    """CRPS approximated as twice the mean pinball loss over an evenly spaced level grid."""
    return 2.0 * pinball_loss(actual, quantiles)


@dataclass(frozen=True, kw_only=True)
class CoverageTest:
    """A likelihood-ratio coverage test: the statistic, its chi-squared p-value (the tests are
    one-sided by construction: large statistics reject), the hits it saw, and the misses."""

    name: str
    statistic: float
    p_value: float
    n: int
    misses: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic,
            "p_value": self.p_value,
            "n": self.n,
            "misses": self.misses,
        }


def _misses(name: str, values: ArrayLike) -> np.ndarray[Any, np.dtype[np.bool_]]:
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0:
        raise MetricInputError(name, f"must be a non-empty 1-D sequence, got shape {array.shape}")
    if array.dtype != np.bool_:
        if not np.isin(array, (0, 1)).all():
            raise MetricInputError(name, "must hold only True/False (or 1/0)")
        array = array.astype(bool)
    return array


def _bernoulli_loglik(failures: float, successes: float, p: float) -> float:
    """``failures * log(p) + successes * log(1 - p)`` with 0 * log(0) = 0."""
    from scipy.special import xlog1py, xlogy

    return float(xlogy(failures, p) + xlog1py(successes, -p))


def _lr_test(name: str, statistic: float, df: int, misses: np.ndarray[Any, Any]) -> CoverageTest:
    """A likelihood-ratio test's outcome: the chi-squared (``df``) p-value of ``statistic``."""
    from scipy import stats

    return CoverageTest(
        name=name,
        statistic=statistic,
        p_value=float(stats.chi2.sf(max(statistic, 0.0), df)),
        n=int(misses.size),
        misses=int(misses.sum()),
    )


def kupiec_test(missed: ArrayLike, level: float) -> CoverageTest:
    """Kupiec (1995) POF test: do the misses occur at the rate ``1 - level``?

    ``LR = -2 [x log p + (n-x) log(1-p) - x log(x/n) - (n-x) log(1-x/n)]`` with ``x`` misses out
    of ``n`` and ``p = 1 - level``, chi-squared with 1 degree of freedom.
    """
    misses = _misses("missed", missed)
    p = 1.0 - _level("level", level)
    n, x = int(misses.size), int(misses.sum())
    null = _bernoulli_loglik(x, n - x, p)
    alternative = _bernoulli_loglik(x, n - x, x / n)
    return _lr_test("kupiec", -2.0 * (null - alternative), 1, misses)


def christoffersen_tests(missed: ArrayLike, level: float) -> tuple[CoverageTest, CoverageTest]:
    """Christoffersen (1998): the independence test (is a miss more likely after a miss?) and the
    conditional-coverage test (independence and the right rate together).

    From the transition counts ``n_ij`` (state ``i`` then ``j``, 1 = miss):
    ``LR_ind = -2 [log L(pi) - log L(pi_01, pi_11)]`` (chi-squared, 1 df) and
    ``LR_cc = LR_uc + LR_ind`` (chi-squared, 2 df), ``LR_uc`` Kupiec's statistic on the same
    sequence. Returns ``(independence, conditional_coverage)``.
    """
    misses = _misses("missed", missed)
    if misses.size < 2:
        raise MetricInputError("missed", "needs at least 2 values for transitions")
    previous, current = misses[:-1], misses[1:]
    n00 = int(np.sum(~previous & ~current))
    n01 = int(np.sum(~previous & current))
    n10 = int(np.sum(previous & ~current))
    n11 = int(np.sum(previous & current))
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    restricted = _bernoulli_loglik(n01 + n11, n00 + n10, pi)
    unrestricted = _bernoulli_loglik(n01, n00, pi01) + _bernoulli_loglik(n11, n10, pi11)
    independence = -2.0 * (restricted - unrestricted)
    conditional = kupiec_test(misses, level).statistic + independence
    return (
        _lr_test("christoffersen_independence", independence, 1, misses),
        _lr_test("christoffersen_conditional", conditional, 2, misses),
    )


def non_overlapping(missed: ArrayLike, step: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Every ``step``-th row of column ``step - 1`` of an (origins, H) miss matrix.

    Consecutive origins' h-step targets overlap by ``h - 1`` days, so their misses are dependent
    by construction and would make the LR tests over-reject; origins ``h`` days apart do not
    overlap."""
    matrix = np.asarray(missed, dtype=bool)
    if matrix.ndim != 2 or not 1 <= step <= matrix.shape[1]:
        raise MetricInputError("step", f"must be 1..{matrix.shape[-1]} of a 2-D miss matrix")
    return matrix[::step, step - 1]


def coverage_tests(missed: ArrayLike, level: float) -> dict[str, Any]:
    """Kupiec and Christoffersen per horizon step on non-overlapping origins (every h-th origin
    for step h), with step 1 (every origin) first. ``min_kupiec_p`` is the smallest per-step
    Kupiec p-value, what a gate that tests every step looks at."""
    matrix = np.asarray(missed, dtype=bool)
    per_step: list[dict[str, Any]] = []
    for step in range(1, matrix.shape[1] + 1):
        hits = non_overlapping(matrix, step)
        kupiec = kupiec_test(hits, level)
        entry: dict[str, Any] = {"step": step, "kupiec": kupiec.to_dict()}
        if hits.size >= 2:
            independence, conditional = christoffersen_tests(hits, level)
            entry["christoffersen_independence"] = independence.to_dict()
            entry["christoffersen_conditional"] = conditional.to_dict()
        per_step.append(entry)
    return {
        "level": level,
        "step_1": per_step[0],
        "per_step": per_step,
        "min_kupiec_p": min(entry["kupiec"]["p_value"] for entry in per_step),
    }


def h_step_naive_scale(train_closes: ArrayLike, horizon: int) -> FloatArray:
    """``scale[h-1] = mean |log c[s+h] - log c[s]|`` over the training closes, h = 1..H: the
    in-sample error of the h-step naive forecast of the cumulative log return, so naive scores
    about 1 at every step whatever the price level or its growth."""
    closes = as_float_array("train_closes", train_closes)
    if closes.ndim != 1 or closes.size <= horizon:
        raise MetricInputError("train_closes", f"needs more than {horizon} values, 1-D")
    if (closes <= 0.0).any():
        raise MetricInputError("train_closes", "must be positive")
    logs = np.log(closes)
    scale = np.array([np.mean(np.abs(logs[h:] - logs[:-h])) for h in range(1, horizon + 1)])
    if (scale == 0.0).any():
        raise MetricInputError("train_closes", "is constant: the naive scale is 0")
    return scale


def mase_log_returns(actual: ArrayLike, predicted: ArrayLike, scale: ArrayLike) -> float:
    """``mean |r - m| / scale`` over origins and steps; ``scale`` has shape (H,) (one fold) or
    the shape of ``actual`` (each origin with its own fold's scale)."""
    y = as_float_array("actual", actual)
    m = as_float_array("predicted", predicted)
    s = as_float_array("scale", scale)
    _same_shape({"actual": y, "predicted": m})
    if (s <= 0.0).any():
        raise MetricInputError("scale", "must be positive")
    try:
        scaled = np.abs(y - m) / s
    except ValueError as exc:
        raise MetricInputError("scale", f"does not broadcast ({exc})") from None
    return float(np.mean(scaled))


def coverage_by_group(
    covered: ArrayLike, groups: Sequence[Any] | np.ndarray[Any, Any]
) -> dict[str, float]:
    """Share covered per group label (one label per origin row, applied to all its steps)."""
    hits = np.asarray(covered, dtype=bool)
    labels = np.asarray(groups)
    if labels.shape[0] != hits.shape[0]:
        raise MetricInputError("groups", f"needs one label per row, got {labels.shape[0]}")
    return {str(label): float(np.mean(hits[labels == label])) for label in np.unique(labels)}


def terciles(values: ArrayLike) -> np.ndarray[Any, np.dtype[np.int64]]:
    """0 (lowest third), 1, 2 (highest third) by the empirical tercile edges of ``values``."""
    array = as_float_array("values", values)
    edges = np.quantile(array, [1.0 / 3.0, 2.0 / 3.0])
    return np.searchsorted(edges, array, side="right").astype(np.int64)


def kupiec_bounds(n: int, level: float, alpha: float = 0.01) -> tuple[float, float]:
    """The range of realised coverage over ``n`` independent forecasts that Kupiec's test at
    ``alpha`` does not reject (for reading a table; the gate runs the test itself)."""
    inside = [x for x in range(n + 1) if kupiec_test(np.arange(n) < x, level).p_value >= alpha]
    if not inside:
        return (math.nan, math.nan)
    return (1.0 - max(inside) / n, 1.0 - min(inside) / n)
