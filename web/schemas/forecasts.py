"""Forecast payloads: the latest forecast, its history with actuals, and realised accuracy."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Protocol

import msgspec


class ForecastStepOut(msgspec.Struct, frozen=True, kw_only=True):
    """One trading day ahead. Interval bounds are null when the model had too few calibration
    errors to bound that level (a young naive baseline, say)."""

    step: int
    target_date: date
    point: float
    lower_80: float | None
    upper_80: float | None
    lower_95: float | None
    upper_95: float | None
    naive: float


class ModelSkill(msgspec.Struct, frozen=True, kw_only=True):
    """How the model scored in its walk-forward backtest, against the naive forecast on the same
    windows. Theil's U2 < 1 (or ``mase`` below ``naive_mase``) means a lower error than naive there;
    ``dm_p_value`` (Diebold-Mariano, two-sided) says whether the difference is more than noise.
    MASE is scaled by the one-step in-sample naive error, so it is above 1 for naive itself at
    several steps: compare it with ``naive_mase``, not with 1."""

    label: str
    mase: float | None = None
    theil_u2: float | None = None
    directional_accuracy: float | None = None
    coverage_80: float | None = None
    coverage_95: float | None = None
    naive_mase: float | None = None
    dm_p_value: float | None = None


class ForecastModel(msgspec.Struct, frozen=True, kw_only=True):
    """The model that made a forecast: a stored version, or the naive baseline (no version)."""

    kind: str
    version_id: int | None
    model_name: str | None
    status: str | None
    skill: ModelSkill


class LatestForecast(msgspec.Struct, frozen=True, kw_only=True):
    """The most recent forecast issued for a symbol, precomputed by the scheduler."""

    symbol: str
    issued_at: datetime
    last_observed_date: date
    last_close: float
    horizon: int
    model: ForecastModel
    steps: list[ForecastStepOut]


class ForecastRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a past forecast with, once its target date has passed, what happened."""

    issued_at: datetime
    model_kind: str
    model_version_id: int | None
    step: int
    target_date: date
    last_observed_date: date
    last_close: float
    point: float
    lower_80: float | None
    upper_80: float | None
    lower_95: float | None
    upper_95: float | None
    naive: float
    actual: float | None
    error: float | None
    naive_error: float | None
    within_80: bool | None
    within_95: bool | None


class ForecastHistory(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    start: date | None
    end: date | None
    count: int
    truncated: bool
    forecasts: list[ForecastRecord]


class AccuracyGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Realised accuracy of one model kind over one period (or all of them, ``period`` null).

    ``relative_mae`` = MAE / MAE of the naive forecast on the same targets (a MASE-like skill:
    below 1 beats naive); ``theil_u2`` = RMSE / RMSE of naive. Errors are in price units.
    """

    model_kind: str
    period: str | None
    count: int
    mae: float
    rmse: float
    mape: float | None
    naive_mae: float
    naive_rmse: float
    relative_mae: float | None
    theil_u2: float | None
    directional_accuracy: float | None
    coverage_80: float | None
    coverage_95: float | None


class AccuracyReport(msgspec.Struct, frozen=True, kw_only=True):
    """How the forecasts served for a symbol turned out, against the naive forecast."""

    symbol: str
    evaluated: int
    first_target_date: date | None
    last_target_date: date | None
    grouping: str
    overall: list[AccuracyGroup]
    recent_days: int
    recent: list[AccuracyGroup]
    periods: list[AccuracyGroup]


def finite_or_none(value: float | None) -> float | None:
    """JSON has no infinity; an unbounded or missing figure is null."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


class StepFields(Protocol):
    """What a stored forecast row and a freshly computed forecast step both have."""

    @property
    def step(self) -> int: ...
    @property
    def target_date(self) -> date: ...
    @property
    def point(self) -> float: ...
    @property
    def lower_80(self) -> float: ...
    @property
    def upper_80(self) -> float: ...
    @property
    def lower_95(self) -> float: ...
    @property
    def upper_95(self) -> float: ...
    @property
    def naive(self) -> float: ...


def step_out(step: StepFields) -> ForecastStepOut:
    """The payload of one horizon step, stored (``forecasts`` row) or just predicted."""
    return ForecastStepOut(
        step=step.step,
        target_date=step.target_date,
        point=step.point,
        lower_80=finite_or_none(step.lower_80),
        upper_80=finite_or_none(step.upper_80),
        lower_95=finite_or_none(step.lower_95),
        upper_95=finite_or_none(step.upper_95),
        naive=step.naive,
    )


def model_skill(kind: str, metrics: Mapping[str, Any] | None) -> ModelSkill:
    """The backtest summary of a model version (``model_versions.metrics``), keyed by its kind
    (``lstm_mase``, ``lstm_theil_u2``, ..., ``naive_mase``, ``dm_p_value``)."""
    if kind == "naive":
        return ModelSkill(label="naive baseline")
    values = metrics or {}

    def metric(name: str) -> float | None:
        raw = values.get(name)
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return None
        return finite_or_none(float(raw))

    return ModelSkill(
        label=f"{kind} walk-forward backtest",
        mase=metric(f"{kind}_mase"),
        theil_u2=metric(f"{kind}_theil_u2"),
        directional_accuracy=metric(f"{kind}_directional_accuracy"),
        coverage_80=metric(f"{kind}_coverage_80"),
        coverage_95=metric(f"{kind}_coverage_95"),
        naive_mase=metric("naive_mase"),
        dm_p_value=metric("dm_p_value"),
    )
