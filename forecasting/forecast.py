"""What a forecast is: prices per trading day ahead, with 80%/95% intervals and the naive value
next to it.

Every model forecasts cumulative log returns from the last close; this module turns those, plus
the half-widths of the intervals, into prices: ``point = c * exp(r)``, ``interval = c * exp(r ± q)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from forecasting.errors import PortableError

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]

#: The levels every model publishes intervals for (the same as ``forecasting.conformal.LEVELS``).
INTERVAL_LEVELS = (0.8, 0.95)
#: New York Stock Exchange, as in ``forecasting.calendar`` (not imported here: it is heavy).
DEFAULT_EXCHANGE = "XNYS"


class NotFittedError(PortableError, RuntimeError):
    """A model was asked to predict or save before it was fitted."""

    def __init__(self, model: str, action: str = "predict") -> None:
        super().__init__(f"{model} must be fitted before it can {action}; call fit(bars) first")
        self.model = model
        self.action = action


def _json_float(value: float) -> float | None:
    """JSON has no infinity: an unbounded interval edge is written as null."""
    return value if math.isfinite(value) else None


@dataclass(frozen=True, kw_only=True)
class ForecastStep:
    """One trading day ahead. Bounds may be infinite when the calibration set was too small."""

    step: int
    target_date: date
    point: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    naive: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "target_date": self.target_date.isoformat(),
            "point": self.point,
            "lower_80": _json_float(self.lower_80),
            "upper_80": _json_float(self.upper_80),
            "lower_95": _json_float(self.lower_95),
            "upper_95": _json_float(self.upper_95),
            "naive": self.naive,
        }


@dataclass(frozen=True, kw_only=True)
class Forecast:
    """A forecast made after the close of ``last_observed_date`` by a model of ``model_kind``."""

    model_kind: str
    last_observed_date: date
    last_close: float
    steps: tuple[ForecastStep, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_kind": self.model_kind,
            "last_observed_date": self.last_observed_date.isoformat(),
            "last_close": self.last_close,
            "steps": [step.to_dict() for step in self.steps],
        }


def price_intervals(
    last_closes: FloatArray, log_returns: FloatArray, half_width: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Interval bounds in prices for (n, H) log-return forecasts and (H,) half-widths."""
    base = last_closes[:, None]
    with np.errstate(over="ignore"):
        return base * np.exp(log_returns - half_width), base * np.exp(log_returns + half_width)


def build_forecast(
    *,
    model_kind: str,
    bars: pd.DataFrame,
    log_returns: Sequence[float] | FloatArray,
    quantiles: Mapping[float, FloatArray],
    exchange: str,
) -> Forecast:
    """Turn one origin's log-return forecast into a :class:`Forecast` dated on the exchange's
    trading calendar (a forecast made on a Friday for one step targets the next session)."""
    from forecasting.calendar import trading_days_after

    last_day = pd.Timestamp(bars["date"].iloc[-1]).date()
    last_close = float(bars["close"].iloc[-1])
    returns = np.asarray(log_returns, dtype=np.float64)
    horizon = returns.shape[0]
    target_dates = trading_days_after(last_day, horizon, exchange)
    closes = np.array([last_close])
    lower_80, upper_80 = price_intervals(closes, returns[None, :], quantiles[0.8])
    lower_95, upper_95 = price_intervals(closes, returns[None, :], quantiles[0.95])
    points = last_close * np.exp(returns)
    steps = tuple(
        ForecastStep(
            step=h + 1,
            target_date=target_dates[h],
            point=float(points[h]),
            lower_80=float(lower_80[0, h]),
            upper_80=float(upper_80[0, h]),
            lower_95=float(lower_95[0, h]),
            upper_95=float(upper_95[0, h]),
            naive=last_close,
        )
        for h in range(horizon)
    )
    return Forecast(
        model_kind=model_kind, last_observed_date=last_day, last_close=last_close, steps=steps
    )
