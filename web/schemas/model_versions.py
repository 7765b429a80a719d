"""Model-version payloads: the registry as the service sees it, with links into MLflow."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import msgspec

from db.models import ModelStatus, ModelVersion
from web.schemas.forecasts import ModelSkill, finite_or_none, model_skill


class MlflowLinks(msgspec.Struct, frozen=True, kw_only=True):
    """Where the training run and the registered version live in MLflow. URLs are null unless the
    server knows the MLflow UI's address (``mlflow_ui_url``)."""

    run_id: str | None
    run_url: str | None
    registry_name: str | None
    registry_version: int | None
    registry_url: str | None


class CandidateScore(msgspec.Struct, frozen=True, kw_only=True):
    """One candidate of a version's backtest (a point model with a volatility model), scored on
    the same out-of-sample origins as every other: realised coverage of its 80% and 95%
    intervals, their interval (Winkler) scores and CRPS in percent of log return, MASE on log
    returns and Theil's U2, and the smallest per-step Kupiec p-value of each level."""

    name: str
    point: str
    scale: str
    selected: bool
    coverage_80: float | None = None
    coverage_95: float | None = None
    interval_score_80: float | None = None
    interval_score_95: float | None = None
    crps: float | None = None
    mase: float | None = None
    theil_u2: float | None = None
    kupiec_min_p_80: float | None = None
    kupiec_min_p_95: float | None = None


_CANDIDATE_FIGURES = (
    "coverage_80",
    "coverage_95",
    "interval_score_80",
    "interval_score_95",
    "crps",
    "mase",
    "theil_u2",
    "kupiec_min_p_80",
    "kupiec_min_p_95",
)


def backtest_candidates(backtest: dict[str, Any] | None) -> list[CandidateScore]:
    """The candidates of a stored backtest report, the one its gate selected marked."""
    report = backtest or {}
    selected = report.get("selected")
    out = []
    for name, block in (report.get("candidates") or {}).items():
        if not isinstance(block, dict):
            continue
        figures: dict[str, float | None] = {}
        for key in _CANDIDATE_FIGURES:
            raw = block.get(key)
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                figures[key] = finite_or_none(float(raw))
        out.append(
            CandidateScore(
                name=str(name),
                point=str(block.get("point", "")),
                scale=str(block.get("scale", "")),
                selected=name == selected,
                **figures,
            )
        )
    return out


class ModelSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    symbol: str
    model_name: str | None
    kind: str
    status: ModelStatus
    status_reason: str | None
    skill: ModelSkill
    created_at: datetime
    promoted_at: datetime | None
    #: The candidate its retrain's gate selected (``champion``: the champion stayed).
    selected: str | None
    candidates: list[CandidateScore]
    url: str


class ModelDetail(msgspec.Struct, frozen=True, kw_only=True):
    """Everything recorded about a trained model: its backtest against the baselines, why it was
    promoted or rejected, and where its MLflow run is."""

    id: int
    symbol: str
    model_name: str | None
    kind: str
    status: ModelStatus
    status_reason: str | None
    skill: ModelSkill
    metrics: dict[str, Any]
    baseline_metrics: dict[str, Any]
    params: dict[str, Any]
    backtest: dict[str, Any]
    train_start: date | None
    train_end: date | None
    training_seconds: float | None
    job_id: str | None
    created_at: datetime
    promoted_at: datetime | None
    selected: str | None
    candidates: list[CandidateScore]
    mlflow: MlflowLinks


def model_url(version_id: int) -> str:
    return f"/models/{version_id}"


def _identity(row: ModelVersion) -> dict[str, Any]:
    """What every model-version payload says first: which version, and how it stands."""
    return {
        "id": row.id,
        "symbol": row.symbol,
        "model_name": row.model_name,
        "kind": row.kind,
        "status": ModelStatus(row.status),
        "status_reason": row.status_reason,
        "skill": model_skill(row.kind, row.metrics),
        "created_at": row.created_at,
        "promoted_at": row.promoted_at,
        "selected": (row.backtest or {}).get("selected"),
        "candidates": backtest_candidates(row.backtest),
    }


def model_summary(row: ModelVersion) -> ModelSummary:
    return ModelSummary(**_identity(row), url=model_url(row.id))


def model_detail(row: ModelVersion, *, mlflow_ui_url: str | None) -> ModelDetail:
    return ModelDetail(
        **_identity(row),
        metrics=dict(row.metrics or {}),
        baseline_metrics=dict(row.baseline_metrics or {}),
        params=dict(row.params or {}),
        backtest=dict(row.backtest or {}),
        train_start=row.train_start,
        train_end=row.train_end,
        training_seconds=row.training_seconds,
        job_id=row.job_id,
        mlflow=mlflow_links(row, mlflow_ui_url),
    )


def mlflow_links(row: ModelVersion, ui_url: str | None) -> MlflowLinks:
    """Links into the MLflow UI's own routes (``#/runs/<id>`` and
    ``#/models/<name>/versions/<n>``), which resolve without knowing the experiment id."""
    base = ui_url.rstrip("/") if ui_url else None
    run_url = (
        f"{base}/#/runs/{quote(row.mlflow_run_id, safe='')}" if base and row.mlflow_run_id else None
    )
    registry_url = (
        f"{base}/#/models/{quote(row.registry_name, safe='')}/versions/{row.registry_version}"
        if base and row.registry_name and row.registry_version is not None
        else None
    )
    return MlflowLinks(
        run_id=row.mlflow_run_id,
        run_url=run_url,
        registry_name=row.registry_name,
        registry_version=row.registry_version,
        registry_url=registry_url,
    )
