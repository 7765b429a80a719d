"""Point-forecast accuracy measures and the Diebold-Mariano test, in plain numpy/scipy.

Every function takes arrays of equal shape, rejects empty, mismatched or NaN input with
:class:`MetricInputError`, and returns plain floats so the figures go straight into JSON and SQL.
Definitions follow Hyndman & Koehler (2006), "Another look at measures of forecast accuracy",
and Hyndman & Athanasopoulos, *Forecasting: Principles and Practice* (3rd ed.), section 5.8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from forecasting.errors import PortableError

FloatArray = NDArray[np.float64]


class MetricInputError(PortableError, ValueError):
    """An array handed to a metric that the metric cannot be computed on."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


def as_float_array(name: str, values: ArrayLike, *, allow_infinite: bool = False) -> FloatArray:
    """Return ``values`` as a non-empty float64 array, or raise :class:`MetricInputError`.

    NaN is always refused: a missing actual or forecast must be dealt with before scoring, not
    averaged away. Infinities are refused unless ``allow_infinite`` (interval bounds may be
    infinite when the calibration set is too small for the requested level).
    """
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise MetricInputError(name, f"not numeric ({error})") from error
    if array.size == 0:
        raise MetricInputError(name, "is empty")
    if np.isnan(array).any():
        raise MetricInputError(name, f"contains NaN ({int(np.isnan(array).sum())} of {array.size})")
    if not allow_infinite and np.isinf(array).any():
        raise MetricInputError(name, "contains an infinite value")
    return array


def _same_shape(first: tuple[str, FloatArray], *others: tuple[str, FloatArray]) -> None:
    name, array = first
    for other_name, other in others:
        if other.shape != array.shape:
            raise MetricInputError(
                other_name, f"shape {other.shape} does not match {name} shape {array.shape}"
            )


def _pair(actual: ArrayLike, predicted: ArrayLike) -> tuple[FloatArray, FloatArray]:
    a = as_float_array("actual", actual)
    p = as_float_array("predicted", predicted)
    _same_shape(("actual", a), ("predicted", p))
    return a, p


def rmse(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Root mean squared error, ``sqrt(mean((y - yhat)^2))``, in the units of the data."""
    a, p = _pair(actual, predicted)
    return float(np.sqrt(np.mean((a - p) ** 2)))


def mae(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean absolute error, ``mean(|y - yhat|)``, in the units of the data."""
    a, p = _pair(actual, predicted)
    return float(np.mean(np.abs(a - p)))


def mape(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Mean absolute percentage error, ``100 * mean(|y - yhat| / |y|)``, in percent.

    Undefined when an actual value is 0 (Hyndman & Koehler 2006), so that raises instead of
    returning infinity; prices are positive, returns are not, so score prices with it.
    """
    a, p = _pair(actual, predicted)
    zeros = int(np.count_nonzero(a == 0.0))
    if zeros:
        raise MetricInputError("actual", f"MAPE is undefined: {zeros} actual value(s) are 0")
    return float(100.0 * np.mean(np.abs((a - p) / a)))


def r2(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Coefficient of determination, ``1 - SS_res / SS_tot`` around the mean of ``actual``.

    On price levels a naive forecast already scores close to 1, so read it next to the naive
    figure. When ``actual`` is constant ``SS_tot`` is 0 and the ratio is undefined; like
    scikit-learn's ``r2_score`` (``force_finite=True``) this returns 1.0 for a perfect forecast
    and 0.0 otherwise, so the figure stays a finite, storable number.
    """
    a, p = _pair(actual, predicted)
    ss_res = float(np.sum((a - p) ** 2))
    ss_tot = float(np.sum((a - np.mean(a)) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def naive_scale(train_values: ArrayLike, *, lag: int = 1) -> float:
    """The MASE scale: in-sample mean absolute error of the naive forecast on the training series.

    ``mean(|y_t - y_{t-lag}|)`` for ``t = lag+1 .. T`` (Hyndman & Koehler 2006, "scaled errors";
    ``lag`` is the seasonal period ``m`` of the seasonal variant, 1 for daily prices). Computed on
    the training part only, so the test windows never leak into the scale. A constant series has no
    naive error to scale by, which raises.
    """
    if isinstance(lag, bool) or not isinstance(lag, int) or lag < 1:
        raise MetricInputError("lag", f"must be a positive integer, got {lag!r}")
    values = as_float_array("train_values", train_values)
    if values.ndim != 1:
        raise MetricInputError("train_values", f"must be 1-D, got shape {values.shape}")
    if values.size <= lag:
        raise MetricInputError(
            "train_values", f"needs more than {lag} value(s) for a lag-{lag} naive error"
        )
    scale = float(np.mean(np.abs(values[lag:] - values[:-lag])))
    if scale == 0.0:
        raise MetricInputError("train_values", "is constant: the naive scale (and MASE) is 0/0")
    return scale


def mase(actual: ArrayLike, predicted: ArrayLike, scale: float) -> float:
    """Mean absolute scaled error, ``MAE / scale`` (Hyndman & Koehler 2006).

    ``scale`` comes from :func:`naive_scale` on the training series. Below 1 the forecast beats
    the in-sample one-step naive forecast; note that multi-step naive errors are larger, so the
    out-of-sample naive forecast itself scores above 1 for steps beyond the first.
    """
    if not math.isfinite(scale) or scale <= 0.0:
        raise MetricInputError("scale", f"must be a finite positive number, got {scale!r}")
    return mae(actual, predicted) / scale


def theil_u2(actual: ArrayLike, predicted: ArrayLike, naive_predicted: ArrayLike) -> float:
    """Theil's U2 as a relative RMSE: ``RMSE(model) / RMSE(naive)`` on the same windows.

    Below 1 the model beats the naive (last value) forecast, above 1 it loses to it
    (Hyndman & Koehler 2006, "relative measures"). Undefined, so raising, when the
    naive forecast is exact everywhere.
    """
    a, p = _pair(actual, predicted)
    n = as_float_array("naive_predicted", naive_predicted)
    _same_shape(("actual", a), ("naive_predicted", n))
    naive_error = rmse(a, n)
    if naive_error == 0.0:
        raise MetricInputError("naive_predicted", "has zero error: Theil's U2 is undefined")
    return rmse(a, p) / naive_error


def directional_accuracy(actual: ArrayLike, predicted: ArrayLike, reference: ArrayLike) -> float:
    """Share of forecasts that call the direction of the move away from ``reference`` right.

    ``reference`` is the last observed close at each forecast origin: shape of ``actual``, or
    ``(n,)`` when ``actual`` is ``(n, H)`` (one origin per row, shared by its horizon steps). A
    forecast scores 1 when ``sign(predicted - reference) == sign(actual - reference)``, else 0,
    except that a predicted change of exactly 0 scores 0.5: it calls no direction, so it is worth
    a coin toss. That makes the naive forecast score exactly 0.5, the line a model must clear to
    show any directional skill. (A call of up or down when the price did not move scores 0.)
    """
    a, p = _pair(actual, predicted)
    ref = as_float_array("reference", reference)
    if ref.shape != a.shape:
        if a.ndim == 2 and ref.shape == (a.shape[0],):
            ref = ref[:, np.newaxis]
        else:
            raise MetricInputError(
                "reference",
                f"shape {ref.shape} matches neither actual shape {a.shape} nor its rows",
            )
    predicted_sign = np.sign(p - ref)
    actual_sign = np.sign(a - ref)
    hits = np.where(predicted_sign == 0.0, 0.5, (predicted_sign == actual_sign).astype(np.float64))
    return float(np.mean(hits))


def coverage(actual: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Share of actual values inside the closed interval ``[lower, upper]``.

    Bounds may be infinite (an interval the calibration set was too small to bound); a lower
    bound above its upper bound is a bug upstream and raises.
    """
    a = as_float_array("actual", actual)
    lo = as_float_array("lower", lower, allow_infinite=True)
    hi = as_float_array("upper", upper, allow_infinite=True)
    _same_shape(("actual", a), ("lower", lo), ("upper", hi))
    crossed = int(np.count_nonzero(lo > hi))
    if crossed:
        raise MetricInputError("lower", f"is above upper in {crossed} position(s)")
    return float(np.mean((lo <= a) & (a <= hi)))


@dataclass(frozen=True, kw_only=True)
class DieboldMariano:
    """The outcome of :func:`diebold_mariano_losses` (and :func:`diebold_mariano`).

    ``statistic`` is the HLN-corrected statistic (positive: the model's loss is higher). Every
    p-value names its alternative: ``p_two_sided`` (the losses differ),
    ``p_one_sided_better`` (the model's expected loss is lower than the baseline's: the test a
    model must pass to be served on evidence) and ``p_one_sided_worse`` (it is higher). ``n`` is
    the number of loss differentials. ``variance_fallback`` is True when the long-run variance with
    ``horizon - 1`` lags came out non-positive and the one-lag (h=1) test was used.
    """

    statistic: float
    p_two_sided: float
    p_one_sided_better: float
    p_one_sided_worse: float
    n: int
    variance_fallback: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields; an infinite statistic (constant non-zero differential) becomes None."""
        return {
            "statistic": self.statistic if math.isfinite(self.statistic) else None,
            "p_two_sided": self.p_two_sided,
            "p_one_sided_better": self.p_one_sided_better,
            "p_one_sided_worse": self.p_one_sided_worse,
            "n": self.n,
            "variance_fallback": self.variance_fallback,
        }


def _long_run_variance_of_mean(d: FloatArray, lags: int) -> float:
    """The truncated (rectangular-kernel) HAC variance of the mean of ``d``.

    ``(gamma_0 + 2 * sum_{k=1..lags} gamma_k) / n`` with autocovariances
    ``gamma_k = (1/n) * sum_{t>k} (d_t - dbar) * (d_{t-k} - dbar)`` (Diebold & Mariano
    1995): an optimal h-step forecast error is at most MA(h-1), so ``lags = h - 1``.
    """
    n = d.size
    centred = d - np.mean(d)
    total = float(np.dot(centred, centred)) / n
    for k in range(1, lags + 1):
        total += 2.0 * float(np.dot(centred[k:], centred[:-k])) / n
    return total / n


def _without_variance(mean_d: float, n: int) -> DieboldMariano:
    """The limit of the test when the loss differential has no variance: a tie when it is 0,
    otherwise a certain difference in the direction of its sign."""
    if mean_d == 0.0:
        return DieboldMariano(
            statistic=0.0, p_two_sided=1.0, p_one_sided_better=0.5, p_one_sided_worse=0.5, n=n
        )
    worse = mean_d > 0.0
    return DieboldMariano(
        statistic=math.copysign(math.inf, mean_d),
        p_two_sided=0.0,
        p_one_sided_better=1.0 if worse else 0.0,
        p_one_sided_worse=0.0 if worse else 1.0,
        n=n,
    )


def diebold_mariano(
    errors_model: ArrayLike, errors_baseline: ArrayLike, horizon: int
) -> DieboldMariano:
    """Diebold-Mariano under squared-error loss: :func:`diebold_mariano_losses` on the squared
    errors of the two forecasts."""
    e_model = as_float_array("errors_model", errors_model)
    e_base = as_float_array("errors_baseline", errors_baseline)
    _same_shape(("errors_model", e_model), ("errors_baseline", e_base))
    return diebold_mariano_losses(
        e_model**2, e_base**2, horizon, names=("errors_model", "errors_baseline")
    )


def diebold_mariano_losses(
    loss_model: ArrayLike,
    loss_baseline: ArrayLike,
    horizon: int,
    *,
    names: tuple[str, str] = ("loss_model", "loss_baseline"),
) -> DieboldMariano:
    """Diebold-Mariano test of equal expected loss (any loss: squared error, interval score),
    with the small-sample correction of Harvey, Leybourne & Newbold (1997).

    With ``d_t = loss_model_t - loss_baseline_t`` over ``n`` forecasts of the same ``horizon``:
    ``DM = mean(d) / sqrt(V)``, ``V`` the long-run variance of the mean with autocovariances up to
    lag ``horizon - 1``; ``DM* = DM * sqrt((n + 1 - 2h + h(h-1)/n) / n)`` is compared with
    Student's t with ``n - 1`` degrees of freedom. Positive ``DM*`` means the model's loss is the
    higher one, so ``p_one_sided_worse = P(T >= DM*)`` and ``p_one_sided_better = P(T <= DM*)``.

    When ``V`` is not positive for ``horizon > 1`` (the truncated estimator is not guaranteed to be
    positive), the test is redone with ``horizon = 1``, as R's ``forecast::dm.test`` does, and
    ``variance_fallback`` is set. A constant differential has no variance: identical losses
    (``d == 0``) give statistic 0, ``p_two_sided`` 1 and both one-sided p-values 0.5 (the t
    distribution's value at 0); a constant non-zero ``d`` gives an infinite statistic of its sign
    and the limiting p-values (0 two-sided; 0 or 1 one-sided).
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise MetricInputError("horizon", f"must be a positive integer, got {horizon!r}")
    first, second = names
    l_model = as_float_array(first, loss_model)
    l_base = as_float_array(second, loss_baseline)
    _same_shape((first, l_model), (second, l_base))
    if l_model.ndim != 1:
        raise MetricInputError(first, f"must be 1-D, got shape {l_model.shape}")
    n = l_model.size
    if n <= horizon:
        raise MetricInputError(first, f"needs more than horizon = {horizon} values, got {n}")
    d = l_model - l_base

    if np.ptp(d) == 0.0:
        return _without_variance(float(d[0]), n)

    h = horizon
    variance = _long_run_variance_of_mean(d, h - 1)
    fallback = False
    if variance <= 0.0 and h > 1:
        h = 1
        variance = _long_run_variance_of_mean(d, 0)
        fallback = True
    if variance <= 0.0:
        # d is not constant, so gamma_0 > 0 in exact arithmetic; only underflow gets here.
        return _without_variance(float(np.mean(d)), n)
    statistic = float(np.mean(d)) / math.sqrt(variance)
    # HLN factor; n + 1 - 2h + h(h-1)/n = (n-h)(n-h+1)/n > 0 because n > h.
    statistic *= math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    df = n - 1
    # scipy.stats costs ~0.7 s to import; only the DM test needs it, not every importer of
    # the metrics (the settings, the API).
    from scipy import stats

    p_worse = float(stats.t.sf(statistic, df))
    p_better = float(stats.t.cdf(statistic, df))
    p_two = float(2.0 * stats.t.sf(abs(statistic), df))
    return DieboldMariano(
        statistic=statistic,
        p_two_sided=min(p_two, 1.0),
        p_one_sided_better=p_better,
        p_one_sided_worse=p_worse,
        n=n,
        variance_fallback=fallback,
    )
