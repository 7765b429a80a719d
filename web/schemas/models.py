"""Model-version payloads: the registry as the service sees it, with links into MLflow."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import msgspec

from db.models import ModelStatus, ModelVersion
from web.schemas.forecasts import ModelSkill, model_skill


class MlflowLinks(msgspec.Struct, frozen=True, kw_only=True):
    """Where the training run and the registered version live in MLflow. URLs are null unless the
    server knows the MLflow UI's address (``mlflow_ui_url``)."""

    run_id: str | None
    run_url: str | None
    registry_name: str | None
    registry_version: int | None
    registry_url: str | None


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
    mlflow: MlflowLinks


def model_url(version_id: int) -> str:
    return f"/models/{version_id}"


def model_summary(row: ModelVersion) -> ModelSummary:
    return ModelSummary(
        id=row.id,
        symbol=row.symbol,
        model_name=row.model_name,
        kind=row.kind,
        status=ModelStatus(row.status),
        status_reason=row.status_reason,
        skill=model_skill(row.kind, row.metrics),
        created_at=row.created_at,
        promoted_at=row.promoted_at,
        url=model_url(row.id),
    )


def model_detail(row: ModelVersion, *, mlflow_ui_url: str | None) -> ModelDetail:
    return ModelDetail(
        id=row.id,
        symbol=row.symbol,
        model_name=row.model_name,
        kind=row.kind,
        status=ModelStatus(row.status),
        status_reason=row.status_reason,
        skill=model_skill(row.kind, row.metrics),
        metrics=dict(row.metrics or {}),
        baseline_metrics=dict(row.baseline_metrics or {}),
        params=dict(row.params or {}),
        backtest=dict(row.backtest or {}),
        train_start=row.train_start,
        train_end=row.train_end,
        training_seconds=row.training_seconds,
        job_id=row.job_id,
        created_at=row.created_at,
        promoted_at=row.promoted_at,
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
