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


class DmEvidence(msgspec.Struct, frozen=True, kw_only=True):
    """One Diebold-Mariano p-value of the served candidate's backtest, named: ``test`` says which
    loss against which model (``interval_score_vs_naive``; ``squared_error_lstm_vs_naive`` is the
    LSTM's own test, which decides whether its point is served), ``sided`` whether the p-value is
    ``one-sided`` (H1: the first model's loss is lower) or ``two-sided``."""

    test: str
    p_value: float | None
    sided: str
    alternative: str


class CoverageFigures(msgspec.Struct, frozen=True, kw_only=True):
    """How often an interval covered, against what it claims: ``backtest`` over the retrain's
    out-of-sample origins, ``live`` over this plan's forecast steps that have matured (null
    before any has)."""

    nominal: float
    backtest: float | None
    live: float | None


class ServingCalibration(msgspec.Struct, frozen=True, kw_only=True):
    """The served intervals' calibration. Interval (Winkler) scores are in percent of the
    cumulative log return, mean over the horizon (lower is better), beside those of the naive
    forecast with normal intervals from the 60-day standard deviation. ``aci_alpha``: the
    miscoverage level adaptive conformal inference currently targets, per nominal level
    (``"0.8"``, ``"0.95"``) and horizon step; below ``1 - level`` means the intervals were missing
    and are being widened, above means they were covering more than claimed."""

    coverage_80: CoverageFigures
    coverage_95: CoverageFigures
    live_matured: int
    interval_score_80: float | None
    interval_score_95: float | None
    naive_interval_score_80: float | None
    naive_interval_score_95: float | None
    aci_alpha: dict[str, list[float]]
    aci_matured: int
    calibrated_on: str


class ServingInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What is served for the symbol, and why: the candidate the gate selected at the last
    retrain (a point model and a volatility model), the model version that retrain recorded,
    the gate's reason, its evidence and the calibration of its intervals."""

    plan_id: int
    candidate: str
    point: str
    scale: str
    uses_network: bool
    recalibrated: bool
    model_version_id: int | None
    reason: str
    planned_at: datetime
    updated_at: datetime
    backtest_windows: int | None
    evidence: list[DmEvidence]
    calibration: ServingCalibration


class ForecastBody(msgspec.Struct, frozen=True, kw_only=True):
    """What every forecast payload holds: whose, when, from what, and its steps; and where the
    symbol trades: the exchange whose sessions the target dates are (ISO MIC), the currency every
    price is in (ISO 4217) and the exchange's time zone (IANA). They are null only for a symbol
    whose exchange cannot be told."""

    symbol: str
    issued_at: datetime
    last_observed_date: date
    last_close: float
    horizon: int
    model: ForecastModel
    steps: list[ForecastStepOut]
    exchange: str | None = None
    currency: str | None = None
    timezone: str | None = None


class LatestForecast(ForecastBody, frozen=True, kw_only=True):
    """The most recent forecast issued for a symbol, precomputed by the scheduler. ``serving``
    says what issued it and why (null for the naive baseline of a symbol never retrained, and
    for forecasts made before served plans existed)."""

    serving: ServingInfo | None = None


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
    """Past forecasts with their outcomes; prices in ``currency`` (ISO 4217)."""

    symbol: str
    start: date | None
    end: date | None
    count: int
    truncated: bool
    forecasts: list[ForecastRecord]
    exchange: str | None = None
    currency: str | None = None
    timezone: str | None = None


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
    # A served plan's kind names its point and volatility model (``drift+garch_t``); the
    # backtest's figures are keyed by the point.
    kind = kind.split("+", maxsplit=1)[0]
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


def _figure(block: Mapping[str, Any], key: str) -> float | None:
    raw = block.get(key)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return finite_or_none(float(raw))


class PlanFields(Protocol):
    """What a stored served plan has (``db.models.ServedPlan``)."""

    @property
    def id(self) -> int: ...
    @property
    def candidate(self) -> str: ...
    @property
    def point(self) -> str: ...
    @property
    def scale(self) -> str: ...
    @property
    def uses_network(self) -> bool: ...
    @property
    def recalibrated(self) -> bool: ...
    @property
    def model_version_id(self) -> int | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def recipe(self) -> dict[str, Any]: ...
    @property
    def evidence(self) -> dict[str, Any]: ...


def _aci_alpha(calibration: Mapping[str, Any]) -> dict[str, list[float]]:
    levels = [float(v) for v in calibration.get("levels", [])]
    rows = calibration.get("alphas", [])
    out: dict[str, list[float]] = {}
    for level in (0.8, 0.95):
        if level in levels:
            k = levels.index(level)
            out[str(level)] = [float(row[k]) for row in rows]
    return out


def serving_info(
    plan: PlanFields, *, live_matured: int, live_within_80: int, live_within_95: int
) -> ServingInfo:
    """The ``serving`` block of a forecast from its plan and the plan's matured steps."""
    evidence = plan.evidence or {}
    backtest = evidence.get("backtest") or {}
    naive = evidence.get("naive_reference") or {}
    calibration = (plan.recipe or {}).get("calibration") or {}

    def live(within: int) -> float | None:
        return within / live_matured if live_matured else None

    windows = evidence.get("windows")
    return ServingInfo(
        plan_id=plan.id,
        candidate=plan.candidate,
        point=plan.point,
        scale=plan.scale,
        uses_network=plan.uses_network,
        recalibrated=plan.recalibrated,
        model_version_id=plan.model_version_id,
        reason=plan.reason,
        planned_at=plan.created_at,
        updated_at=plan.updated_at,
        backtest_windows=windows if isinstance(windows, int) else None,
        evidence=[
            DmEvidence(
                test=str(entry.get("test")),
                p_value=_figure(entry, "p_value"),
                sided=str(entry.get("sided")),
                alternative=str(entry.get("alternative")),
            )
            for entry in evidence.get("dm") or []
            if isinstance(entry, Mapping)
        ],
        calibration=ServingCalibration(
            coverage_80=CoverageFigures(
                nominal=0.8, backtest=_figure(backtest, "coverage_80"), live=live(live_within_80)
            ),
            coverage_95=CoverageFigures(
                nominal=0.95, backtest=_figure(backtest, "coverage_95"), live=live(live_within_95)
            ),
            live_matured=live_matured,
            interval_score_80=_figure(backtest, "interval_score_80"),
            interval_score_95=_figure(backtest, "interval_score_95"),
            naive_interval_score_80=_figure(naive, "interval_score_80"),
            naive_interval_score_95=_figure(naive, "interval_score_95"),
            aci_alpha=_aci_alpha(calibration),
            aci_matured=int(calibration.get("matured", 0)),
            calibrated_on=str(calibration.get("source", "calibration")),
        ),
    )
