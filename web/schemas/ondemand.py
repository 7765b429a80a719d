"""Payloads of on-demand training and prediction.

Both requests accept the original service's payloads unchanged (``model_name``, ``symbol``,
``start_date``, ``end_date``, ``epochs``, ``batch_size``, ``prediction_steps``; and ``model_name``,
``symbol``, ``lookback_days``) plus the new options. Unknown fields are refused rather than
ignored, so a typo (``"epoch": 5``) is a 422 instead of a silent default.
"""

from __future__ import annotations

from datetime import date

import msgspec

from db.contracts import RetrainParams, check_training_period
from forecasting.promotion import PromotionPolicy
from web.schemas.fields import (
    BatchSize,
    Epochs,
    Folds,
    Horizon,
    Lookback,
    ModelName,
    Symbol,
    normalized,
)
from web.schemas.forecasts import ForecastBody
from web.schemas.jobs import QueuedJob


class TrainRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Train a challenger for ``symbol`` on the scheduler's workers (never in the API process).

    The model is promoted to champion only if it passes the promotion gate (``policy``).
    ``prediction_steps`` is the original name of ``horizon``; give either, or both equal.
    """

    symbol: Symbol
    model_name: ModelName | None = None
    start_date: date | None = None
    end_date: date | None = None
    epochs: Epochs | None = None
    batch_size: BatchSize | None = None
    prediction_steps: Horizon | None = None
    horizon: Horizon | None = None
    lookback: Lookback | None = None
    folds: Folds | None = None
    policy: PromotionPolicy | None = None

    def __post_init__(self) -> None:
        normalized(self)
        check_training_period(self.start_date, self.end_date)
        if (
            self.prediction_steps is not None
            and self.horizon is not None
            and self.prediction_steps != self.horizon
        ):
            raise ValueError(
                f"prediction_steps ({self.prediction_steps}) and horizon ({self.horizon}) "
                "disagree; they name the same setting"
            )

    @property
    def effective_horizon(self) -> int | None:
        return self.horizon if self.horizon is not None else self.prediction_steps

    def retrain_params(self) -> RetrainParams:
        """The ``retrain`` job's parameters (unset options are left to the worker)."""
        return RetrainParams(
            model_name=self.model_name,
            start_date=self.start_date,
            end_date=self.end_date,
            epochs=self.epochs,
            batch_size=self.batch_size,
            horizon=self.effective_horizon,
            lookback=self.lookback,
            folds=self.folds,
            policy=self.policy.value if self.policy is not None else None,
        )


class TrainAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """Training was queued; poll ``job.url`` (or watch ``GET /events``) for its outcome."""

    symbol: str
    model_name: str | None
    watched: bool
    job: QueuedJob


class PredictRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Forecast ``symbol`` now with a stored model: the latest version trained as ``model_name``,
    or the symbol's champion when no name is given.

    ``lookback_days`` is how many trading days of history the caller expects the model to read;
    it must cover the model's window (a shorter one is a 422 naming the model's lookback).
    ``horizon`` trims the forecast to its first steps.
    """

    symbol: Symbol
    model_name: ModelName | None = None
    lookback_days: Lookback | None = None
    horizon: Horizon | None = None

    def __post_init__(self) -> None:
        normalized(self)


class PriceFreshness(msgspec.Struct, frozen=True, kw_only=True):
    """Which prices the prediction used. ``stale`` means the last stored bar is older than the
    exchange's last closed session and the source could not provide newer ones (``note`` says
    why); the forecast is still valid as of ``last_bar_date``."""

    last_bar_date: date
    expected_last_session: date | None
    refreshed: bool
    new_bars: int
    stale: bool
    note: str | None


class Prediction(ForecastBody, frozen=True, kw_only=True):
    """A forecast made on demand, with how long it took."""

    prices: PriceFreshness
    model_cached: bool
    inference_ms: float
    latency_ms: float
