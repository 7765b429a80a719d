"""The baselines every model must beat, with the LSTM's interface: naive (the last close) and drift
(the last close carried forward at the mean daily log return of the training part).

Both calibrate split-conformal intervals on their own residuals over the same validation windows
the LSTM uses (same lookback, ``val_fraction`` and ``max_history``), so every model in a backtest
has coverage figures computed the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from forecasting.forecast import (
    DEFAULT_EXCHANGE,
    INTERVAL_LEVELS,
    FloatArray,
    Forecast,
    IndexArray,
    NotFittedError,
    build_forecast,
)
from forecasting.windowing import (
    InsufficientDataError,
    log_returns_ahead,
    split_origins,
)


class _Baseline:
    """Shared fitting: pick the calibration origins, score the residuals, take the quantiles."""

    model_kind: ClassVar[str]

    def __init__(
        self,
        *,
        horizon: int,
        lookback: int = 1,
        val_fraction: float = 0.15,
        max_history: int | None = None,
    ) -> None:
        if not 1 <= horizon <= 30:
            raise ValueError(f"horizon must be 1 to 30, got {horizon}")
        self._horizon = horizon
        self._lookback = lookback
        self._val_fraction = val_fraction
        self._max_history = max_history
        self._quantiles: dict[float, FloatArray] | None = None
        self._slope = 0.0

    @property
    def horizon(self) -> int:
        return self._horizon

    @property
    def fitted(self) -> bool:
        return self._quantiles is not None

    @property
    def quantiles(self) -> Mapping[float, FloatArray]:
        if self._quantiles is None:
            raise NotFittedError(type(self).__name__, "give intervals")
        return self._quantiles

    def fit(self, bars: pd.DataFrame) -> Self:
        """Fit on ``bars`` (already validated): estimate, then calibrate on the validation tail.

        With too little history for a proper split (a newly listed symbol), every available
        window calibrates, in-sample: wider doubt is better than no forecast at all.
        """
        from forecasting.conformal import conformal_quantiles

        history = bars if self._max_history is None else bars.tail(self._max_history)
        closes = history["close"].to_numpy(dtype=np.float64)
        if closes.size == 0:
            raise InsufficientDataError(needed=1, got=0, purpose=f"a {self.model_kind} forecast")
        try:
            split = split_origins(
                closes.size,
                lookback=self._lookback,
                horizon=self._horizon,
                val_fraction=self._val_fraction,
            )
            calibration = split.validation
            estimate_end = int(split.validation[0])
        except InsufficientDataError:
            calibration = np.arange(0, max(closes.size - self._horizon, 0), dtype=np.int64)
            estimate_end = closes.size - 1
        self._slope = self._estimate(closes[: estimate_end + 1])
        if calibration.size == 0:
            self._quantiles = {level: np.full(self._horizon, np.inf) for level in INTERVAL_LEVELS}
            return self
        actual = log_returns_ahead(closes, calibration, self._horizon)
        residuals = np.abs(actual - self._forecast(calibration.size))
        self._quantiles = conformal_quantiles(residuals, INTERVAL_LEVELS)
        return self

    def _estimate(self, closes: FloatArray) -> float:
        return 0.0

    def _forecast(self, n: int) -> FloatArray:
        steps = np.arange(1, self._horizon + 1, dtype=np.float64)
        return np.tile(steps * self._slope, (n, 1))

    def predict_log_returns(
        self, bars: pd.DataFrame, origins: Sequence[int] | IndexArray
    ) -> FloatArray:
        if self._quantiles is None:
            raise NotFittedError(type(self).__name__)
        return self._forecast(np.asarray(origins).reshape(-1).size)

    def predict(self, bars: pd.DataFrame, *, exchange: str = DEFAULT_EXCHANGE) -> Forecast:
        if self._quantiles is None:
            raise NotFittedError(type(self).__name__)
        if len(bars) == 0:
            raise InsufficientDataError(needed=1, got=0, purpose=f"a {self.model_kind} forecast")
        return build_forecast(
            model_kind=self.model_kind,
            bars=bars,
            log_returns=self._forecast(1)[0],
            quantiles=self._quantiles,
            exchange=exchange,
        )


class NaiveForecaster(_Baseline):
    """Every step forecasts the last close: a zero cumulative log return."""

    model_kind: ClassVar[str] = "naive"


class DriftForecaster(_Baseline):
    """Step ``h`` forecasts ``c * exp(h * mu)``, ``mu`` the mean daily log return of the data it
    was fitted on (up to the first validation origin): the random walk with drift, in logs."""

    model_kind: ClassVar[str] = "drift"

    @property
    def slope(self) -> float:
        """The estimated mean daily log return."""
        if not self.fitted:
            raise NotFittedError(type(self).__name__, "give its slope")
        return self._slope

    def _estimate(self, closes: FloatArray) -> float:
        if closes.size < 2:
            return 0.0
        return float(np.log(closes[-1] / closes[0]) / (closes.size - 1))
