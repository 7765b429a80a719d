"""Scale models: ex-ante forecasts of the standard deviation of the cumulative log return
``r[t,h] = log(c[t+h] / c[t])``, made at each origin row ``t`` from the closes up to ``t`` only.

Conformal scores are divided by these forecasts, so an interval widens when the market is nervous
and narrows when it is calm (normalised conformal prediction, Lei et al. 2018, section 5.2).

- ``ewma``: RiskMetrics (J.P. Morgan 1996), ``v[t+1] = l v[t] + (1 - l) r[t]^2`` with l = 0.94;
  flat term structure, so the h-step variance is ``h v``.
- ``garch_t``: GARCH(1,1) with Student-t errors (Bollerslev 1986, 1987). The parameters are
  estimated with ``arch`` (Kevin Sheppard's library, the field's reference); the filtered variance
  and the h-step forecasts are then a small numpy recursion on those fixed parameters, so a
  process that only forecasts never imports ``arch`` (a unit test holds the recursion to
  ``arch``'s own ``forecast()``). The h-step variance is the sum of the per-step forecasts.
- ``ewma_shrunk``: the EWMA variance pulled halfway towards the long-run variance of the data the
  model was fitted on. Volatility mean-reverts, and a full EWMA over-reacts to it: on windows
  before 2020 (the eight test symbols) and on the bundled GOOG/INTC sample, EWMA-normalised 80%
  intervals covered 0.85-0.87 in the most volatile third of origins and 0.72-0.74 in the calmest;
  halfway shrinkage gave 0.80-0.82 and 0.78-0.82, with lower interval scores
  (``bench/scale_tuning.py``; the weight was chosen there, not on the reported windows).
- ``sigma60``: the 60-day sample standard deviation times ``sqrt(h)``, a reference.
- ``fixed``: 1 everywhere, which turns normalised conformal back into plain split conformal.

The LSTM's distributional head is the fourth candidate (``lstm_t``); it lives in the predictor,
because it needs the network, not just the closes.

Every ``sigma`` is causal: the filter runs forward through the closes, and the value at origin
``t`` depends on the returns up to row ``t`` (and, like ``arch``, on a start-up value taken from
the first 75 returns, which washes out after a few months).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Protocol

import numpy as np
from numpy.typing import ArrayLike

from forecasting.errors import PortableError
from forecasting.metrics import FloatArray, MetricInputError, as_float_array

#: Scale models computed from closes alone, in report order.
PRICE_SCALES: Final = ("ewma", "ewma_shrunk", "garch_t")
#: The EWMA's share in ``ewma_shrunk`` (the long-run variance has the rest).
SHRINK_WEIGHT: Final = 0.5
#: RiskMetrics' decay for daily data.
EWMA_DECAY: Final = 0.94
#: Returns that seed a variance recursion (``arch`` uses the same: 75, weights 0.94^i).
_BACKCAST_RETURNS: Final = 75
_SIGMA60_DAYS: Final = 60
#: Fewest returns a GARCH fit is attempted on; fewer fall back to EWMA.
MIN_GARCH_RETURNS: Final = 250
#: arch fits on returns in percent, which keeps its optimiser well scaled.
_PERCENT: Final = 100.0


class UnknownScaleError(PortableError, ValueError):
    """A scale model kind that this module does not know."""

    def __init__(self, kind: object) -> None:
        known = "ewma, ewma_shrunk, garch_t, sigma60, fixed"
        super().__init__(f"unknown scale model {kind!r}: expected one of {known}")
        self.kind = kind


def daily_log_returns(closes: ArrayLike) -> FloatArray:
    """``log(c[i+1] / c[i])``: element ``i`` is the return from row ``i`` to row ``i + 1``, so the
    returns known at the close of row ``t`` are ``[:t]``."""
    values = as_float_array("closes", closes)
    if values.ndim != 1 or values.size < 2:
        raise MetricInputError("closes", f"must be 1-D with at least 2 values, got {values.shape}")
    if (values <= 0.0).any():
        raise MetricInputError("closes", "must be positive")
    return np.diff(np.log(values))


def backcast(returns: FloatArray) -> float:
    """The start-up variance of a recursion: a 0.94-weighted mean of the first 75 squared
    returns, exactly as ``arch`` computes its ``backcast``."""
    tau = min(_BACKCAST_RETURNS, returns.size)
    weights = EWMA_DECAY ** np.arange(tau)
    return float(np.sum(returns[:tau] ** 2 * weights) / np.sum(weights))


def _first_order_filter(inputs: FloatArray, decay: float, start: float) -> FloatArray:
    """``y[0] = start``, ``y[k+1] = decay * y[k] + inputs[k]``; length ``inputs.size + 1``."""
    from scipy.signal import lfilter

    filtered, _ = lfilter([1.0], [1.0, -decay], inputs, zi=[decay * start])
    return np.concatenate([[start], np.asarray(filtered, dtype=np.float64)])


def _check_origins(origins: ArrayLike, rows: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    index = np.asarray(origins, dtype=np.int64).reshape(-1)
    if index.size and (int(index.min()) < 0 or int(index.max()) >= rows):
        raise MetricInputError("origins", f"must be rows 0..{rows - 1} of the closes")
    return index


def _check_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= 30:
        raise MetricInputError("horizon", f"must be an integer from 1 to 30, got {horizon!r}")
    return horizon


class ScaleModel(Protocol):
    """A fitted scale model: plain parameters, JSON round trip, and causal forecasts."""

    @property
    def kind(self) -> str: ...

    def sigma(self, closes: ArrayLike, origins: ArrayLike, horizon: int) -> FloatArray:
        """Forecast standard deviation of ``r[t,h]``, shape ``(len(origins), horizon)``."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class EwmaScale:
    """RiskMetrics EWMA variance; nothing to estimate."""

    decay: float = EWMA_DECAY
    kind: ClassVar[str] = "ewma"

    def __post_init__(self) -> None:
        if not 0.0 < self.decay < 1.0:
            raise MetricInputError("decay", f"must be strictly between 0 and 1, got {self.decay}")

    def one_step_variance(self, closes: ArrayLike) -> FloatArray:
        """Element ``t``: the variance forecast for the return after row ``t`` (length = rows)."""
        returns = daily_log_returns(closes)
        return _first_order_filter((1.0 - self.decay) * returns**2, self.decay, backcast(returns))

    def sigma(self, closes: ArrayLike, origins: ArrayLike, horizon: int) -> FloatArray:
        variance = self.one_step_variance(closes)
        index = _check_origins(origins, variance.size)
        steps = np.arange(1, _check_horizon(horizon) + 1, dtype=np.float64)
        result: FloatArray = np.sqrt(variance[index][:, None] * steps[None, :])
        return result

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "decay": self.decay}


@dataclass(frozen=True, kw_only=True)
class ShrunkEwmaScale:
    """``sqrt(h * (w * v_ewma + (1 - w) * v_long))``: the EWMA variance shrunk towards
    ``long_run_variance``, the variance of the daily returns the model was fitted on."""

    long_run_variance: float
    weight: float = SHRINK_WEIGHT
    decay: float = EWMA_DECAY
    kind: ClassVar[str] = "ewma_shrunk"

    def __post_init__(self) -> None:
        if not math.isfinite(self.long_run_variance) or self.long_run_variance <= 0.0:
            raise MetricInputError(
                "long_run_variance", f"must be positive, got {self.long_run_variance}"
            )
        if not 0.0 <= self.weight <= 1.0:
            raise MetricInputError("weight", f"must be between 0 and 1, got {self.weight}")

    @classmethod
    def fit(cls, closes: ArrayLike) -> ShrunkEwmaScale:
        return cls(long_run_variance=float(np.var(daily_log_returns(closes))))

    def sigma(self, closes: ArrayLike, origins: ArrayLike, horizon: int) -> FloatArray:
        one_step = EwmaScale(decay=self.decay).one_step_variance(closes)
        index = _check_origins(origins, one_step.size)
        variance = self.weight * one_step[index] + (1.0 - self.weight) * self.long_run_variance
        steps = np.arange(1, _check_horizon(horizon) + 1, dtype=np.float64)
        result: FloatArray = np.sqrt(variance[:, None] * steps[None, :])
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "long_run_variance": self.long_run_variance,
            "weight": self.weight,
            "decay": self.decay,
        }


@dataclass(frozen=True, kw_only=True)
class GarchParams:
    """GARCH(1,1)-t parameters as ``arch`` reports them: returns in percent, so ``omega`` is in
    squared percent; ``nu`` is the Student-t degrees of freedom."""

    omega: float
    alpha: float
    beta: float
    nu: float

    def __post_init__(self) -> None:
        values = (self.omega, self.alpha, self.beta, self.nu)
        if not all(isinstance(v, float | int) and math.isfinite(v) for v in values):
            raise MetricInputError("garch", f"parameters must be finite numbers, got {values}")

    def problem(self) -> str | None:
        """Why these parameters make no usable variance model, or None."""
        if self.omega <= 0.0 or self.alpha < 0.0 or self.beta < 0.0:
            return f"omega {self.omega:.3g} <= 0 or a negative alpha/beta"
        # arch keeps alpha + beta <= 1; on calm decades it often lands on 1 (integrated GARCH),
        # which still forecasts a few days ahead sensibly (the variance grows by omega a day).
        if self.alpha + self.beta > 1.0 + 1e-6:
            return f"alpha + beta = {self.alpha + self.beta:.4f} > 1: the variance explodes"
        if self.nu <= 2.0:
            return f"nu = {self.nu:.3g}: the Student-t has no variance"
        return None


@dataclass(frozen=True, kw_only=True)
class GarchTScale:
    """GARCH(1,1) with Student-t errors; ``params`` None means the fit failed and EWMA stands in
    (``fallback`` says why), so a forecast is always possible."""

    params: GarchParams | None
    fallback: str | None = None
    kind: ClassVar[str] = "garch_t"
    _ewma: EwmaScale = field(default_factory=EwmaScale, repr=False, compare=False)

    def one_step_variance(self, closes: ArrayLike) -> FloatArray:
        """Element ``t``: the conditional variance of the return after row ``t``, in log-return
        units (``arch``'s ``sigma2`` shifted one row and divided by 100^2)."""
        if self.params is None:
            return self._ewma.one_step_variance(closes)
        p = self.params
        returns = daily_log_returns(closes) * _PERCENT
        variance = _first_order_filter(p.omega + p.alpha * returns**2, p.beta, backcast(returns))
        result: FloatArray = variance / _PERCENT**2
        return result

    def sigma(self, closes: ArrayLike, origins: ArrayLike, horizon: int) -> FloatArray:
        """Square root of the summed per-step variance forecasts: with persistence
        ``alpha + beta``, ``v[t+k] = omega + (alpha + beta) v[t+k-1]`` for k >= 2."""
        if self.params is None:
            return self._ewma.sigma(closes, origins, horizon)
        one_step = self.one_step_variance(closes)
        index = _check_origins(origins, one_step.size)
        steps = _check_horizon(horizon)
        omega = self.params.omega / _PERCENT**2
        persistence = self.params.alpha + self.params.beta
        per_step = np.empty((index.size, steps))
        per_step[:, 0] = one_step[index]
        for k in range(1, steps):
            per_step[:, k] = omega + persistence * per_step[:, k - 1]
        result: FloatArray = np.sqrt(np.cumsum(per_step, axis=1))
        return result

    def to_dict(self) -> dict[str, Any]:
        params = None
        if self.params is not None:
            p = self.params
            params = {"omega": p.omega, "alpha": p.alpha, "beta": p.beta, "nu": p.nu}
        return {"kind": self.kind, "params": params, "fallback": self.fallback}


@dataclass(frozen=True, kw_only=True)
class Sigma60Scale:
    """The sample standard deviation of the last 60 daily log returns, times ``sqrt(h)``."""

    days: int = _SIGMA60_DAYS
    kind: ClassVar[str] = "sigma60"

    def sigma(self, closes: ArrayLike, origins: ArrayLike, horizon: int) -> FloatArray:
        returns = daily_log_returns(closes)
        index = _check_origins(origins, returns.size + 1)
        if index.size and int(index.min()) < 2:
            raise MetricInputError("origins", "sigma60 needs at least 2 returns before an origin")
        sums = np.concatenate([[0.0], np.cumsum(returns)])
        squares = np.concatenate([[0.0], np.cumsum(returns**2)])
        start = np.maximum(index - self.days, 0)
        count = (index - start).astype(np.float64)
        mean = (sums[index] - sums[start]) / count
        variance = (squares[index] - squares[start] - count * mean**2) / (count - 1.0)
        steps = np.arange(1, _check_horizon(horizon) + 1, dtype=np.float64)
        result: FloatArray = np.sqrt(np.maximum(variance, 0.0)[:, None] * steps[None, :])
        return result

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "days": self.days}


@dataclass(frozen=True, kw_only=True)
class FixedScale:
    """No normalisation: the conformal scores stay absolute residuals."""

    kind: ClassVar[str] = "fixed"

    def sigma(self, closes: ArrayLike, origins: ArrayLike, horizon: int) -> FloatArray:
        count = np.asarray(origins).reshape(-1).size
        return np.ones((count, _check_horizon(horizon)))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}


def fit_garch_t(closes: ArrayLike) -> GarchTScale:
    """Estimate GARCH(1,1)-t on the daily returns of ``closes`` (zero mean: the point model owns
    the mean) with ``arch``. A failed, non-converged or non-stationary fit gives a
    :class:`GarchTScale` that falls back to EWMA, with the reason kept."""
    returns = daily_log_returns(closes)
    if returns.size < MIN_GARCH_RETURNS:
        reason = f"{returns.size} returns are fewer than the {MIN_GARCH_RETURNS} a fit needs"
        return GarchTScale(params=None, fallback=reason)
    from arch import arch_model

    model = arch_model(
        returns * _PERCENT, mean="Zero", vol="GARCH", p=1, q=1, dist="t", rescale=False
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = model.fit(disp="off", show_warning=False)
    except (ValueError, np.linalg.LinAlgError, RuntimeError) as exc:
        return GarchTScale(params=None, fallback=f"the fit failed: {exc}")
    if int(result.convergence_flag) != 0:
        return GarchTScale(params=None, fallback="the optimiser did not converge")
    values = result.params
    params = GarchParams(
        omega=float(values["omega"]),
        alpha=float(values["alpha[1]"]),
        beta=float(values["beta[1]"]),
        nu=float(values["nu"]),
    )
    problem = params.problem()
    if problem is not None:
        return GarchTScale(params=None, fallback=problem)
    return GarchTScale(params=params)


def fit_scale(kind: str, closes: ArrayLike) -> ScaleModel:
    """A scale model of ``kind`` fitted on ``closes`` (data before the fold only)."""
    if kind == "ewma":
        return EwmaScale()
    if kind == "ewma_shrunk":
        return ShrunkEwmaScale.fit(closes)
    if kind == "garch_t":
        return fit_garch_t(closes)
    if kind == "sigma60":
        return Sigma60Scale()
    if kind == "fixed":
        return FixedScale()
    raise UnknownScaleError(kind)


def scale_from_dict(data: Mapping[str, Any]) -> ScaleModel:
    """The inverse of ``to_dict``: stored parameters back into a scale model."""
    kind = data.get("kind")
    if kind == "ewma":
        return EwmaScale(decay=float(data.get("decay", EWMA_DECAY)))
    if kind == "ewma_shrunk":
        return ShrunkEwmaScale(
            long_run_variance=float(data["long_run_variance"]),
            weight=float(data.get("weight", SHRINK_WEIGHT)),
            decay=float(data.get("decay", EWMA_DECAY)),
        )
    if kind == "garch_t":
        raw = data.get("params")
        params = None if raw is None else GarchParams(**{k: float(raw[k]) for k in GARCH_KEYS})
        fallback = data.get("fallback")
        return GarchTScale(params=params, fallback=None if fallback is None else str(fallback))
    if kind == "sigma60":
        return Sigma60Scale(days=int(data.get("days", _SIGMA60_DAYS)))
    if kind == "fixed":
        return FixedScale()
    raise UnknownScaleError(kind)


GARCH_KEYS: Final = ("omega", "alpha", "beta", "nu")


def standardized_t_quantile(level: float, nu: float) -> float:
    """The ``level`` quantile of a Student-t with ``nu`` degrees of freedom rescaled to unit
    variance (the distribution of GARCH-t's standardised errors)."""
    from scipy import stats

    return float(stats.t.ppf(level, nu) * math.sqrt((nu - 2.0) / nu))
