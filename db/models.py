"""The tables of stockcast, as typed SQLAlchemy 2 models.

APScheduler 4 keeps its own tables (``tasks``, ``schedules``, ``jobs``, ``job_results``,
``metadata``) in the same database; ours never share those names, which is why the job history
lives in ``job_runs``.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base, BigIntPK, JSONType, UTCDateTime, utcnow

SYMBOL_LENGTH = 16


class RetrainCadence(StrEnum):
    """How often a symbol's model is retrained by the scheduler."""

    # After every session close, the last of each week, or the last of each month; the
    # session-close trigger's cadence too. (The docstring is the API's description of the enum.)

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class ModelStatus(StrEnum):
    """Where a trained model stands. Exactly one champion per symbol at most (a partial index)."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"
    REJECTED = "rejected"
    RETIRED = "retired"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABANDONED = "abandoned"
    CANCELLED = "cancelled"
    MISSED = "missed"


#: Statuses after which a job never changes again.
FINISHED_JOB_STATUSES = frozenset(
    {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.ABANDONED,
        JobStatus.CANCELLED,
        JobStatus.MISSED,
    }
)


def _enum(kind: type[StrEnum], name: str) -> Enum:
    # A VARCHAR with a CHECK constraint rather than a PostgreSQL ENUM type: enum types need
    # CREATE TYPE (which races between nodes) and ALTER TYPE for every new value.
    return Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class WatchedSymbol(Base):
    """A symbol on the watchlist, with its per-symbol forecasting settings."""

    __tablename__ = "symbols"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH), unique=True)
    #: The exchange-calendars code of the symbol's exchange (``forecasting.calendar``).
    exchange: Mapped[str] = mapped_column(String(8))
    horizon: Mapped[int] = mapped_column(Integer)
    lookback: Mapped[int] = mapped_column(Integer)
    retrain_cadence: Mapped[RetrainCadence] = mapped_column(
        _enum(RetrainCadence, "retrain_cadence"), default=RetrainCadence.WEEKLY
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # Declared exception to "constants once": ``db`` is a leaf and may not import
    # ``forecasting.limits``, so the ranges are literals here (and in migration 0001, which is
    # history). tests/unit/db/test_limits_match.py holds them equal to forecasting.limits.
    __table_args__ = (
        CheckConstraint("horizon BETWEEN 1 AND 30", name="horizon_range"),
        CheckConstraint("lookback BETWEEN 5 AND 500", name="lookback_range"),
    )


class PriceBar(Base):
    """One daily bar of one symbol, split/dividend adjusted. Unique per symbol and date."""

    __tablename__ = "price_bars"

    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH), primary_key=True)
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    open: Mapped[float] = mapped_column(Double)
    high: Mapped[float] = mapped_column(Double)
    low: Mapped[float] = mapped_column(Double)
    close: Mapped[float] = mapped_column(Double)
    adj_close: Mapped[float | None] = mapped_column(Double, nullable=True)
    volume: Mapped[float] = mapped_column(Double)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModelVersion(Base):
    """A trained model of one symbol: where it came from, how it scored, and whether it serves."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    model_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="lstm")
    status: Mapped[ModelStatus] = mapped_column(
        _enum(ModelStatus, "model_status"), default=ModelStatus.CHALLENGER
    )
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    registry_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    registry_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    baseline_metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    backtest: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    train_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    train_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    training_seconds: Mapped[float | None] = mapped_column(Double, nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    artifact: Mapped[ModelArtifactRow | None] = relationship(
        back_populates="model_version", lazy="raise", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_model_versions_symbol_status", "symbol", "status"),
        # At most one champion per symbol, enforced by the database, so promotion is atomic even
        # when two workers race.
        Index(
            "uq_model_versions_one_champion",
            "symbol",
            unique=True,
            postgresql_where=text("status = 'champion'"),
            sqlite_where=text("status = 'champion'"),
        ),
    )


class ModelArtifactRow(Base):
    """The weights (safetensors bytes) and JSON metadata of a model version.

    Kept in the database, apart from the version row so listings don't load blobs: every process
    on every host reads the same artifact, promotion is one transaction, and no file path is ever
    derived from a request.
    """

    __tablename__ = "model_artifacts"

    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    metadata_json: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    sha256: Mapped[str] = mapped_column(String(64))

    model_version: Mapped[ModelVersion] = relationship(back_populates="artifact")


class ForecastRow(Base):
    """One horizon step of a forecast issued for a symbol; actual and error filled in once known."""

    __tablename__ = "forecasts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), nullable=True
    )
    model_kind: Mapped[str] = mapped_column(String(48))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_observed_date: Mapped[date] = mapped_column(Date)
    last_close: Mapped[float] = mapped_column(Double)
    target_date: Mapped[date] = mapped_column(Date)
    step: Mapped[int] = mapped_column(Integer)
    point: Mapped[float] = mapped_column(Double)
    lower_80: Mapped[float] = mapped_column(Double)
    upper_80: Mapped[float] = mapped_column(Double)
    lower_95: Mapped[float] = mapped_column(Double)
    upper_95: Mapped[float] = mapped_column(Double)
    naive: Mapped[float] = mapped_column(Double)
    actual: Mapped[float | None] = mapped_column(Double, nullable=True)
    error: Mapped[float | None] = mapped_column(Double, nullable=True)
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The served plan that issued this step (null for the naive fallback and older rows).
    served_plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("served_plans.id", ondelete="SET NULL"), nullable=True
    )
    #: What the plan's online calibration needs once this step matures: the centre ``m`` and
    #: scale ``s`` of the cumulative log return, and the normalised half-widths issued at each
    #: tracked level (``{"center": m, "sigma": s, "issued": [...]}``).
    calibration: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)

    __table_args__ = (
        UniqueConstraint("symbol", "issued_at", "step"),
        CheckConstraint("step >= 1", name="step_positive"),
        # The hot read: the latest forecast of a symbol.
        Index("ix_forecasts_symbol_issued_at", "symbol", "issued_at"),
        # History and evaluation: forecasts of a symbol by target date.
        Index("ix_forecasts_symbol_target_date", "symbol", "target_date"),
    )


class ServedPlan(Base):
    """What a symbol serves, as the gate chose it at a retrain: the candidate (point and scale
    model), its interval recipe with the online calibration state (updated by the evaluate job as
    forecasts mature), the model version it came from, and the evidence. The newest row of a
    symbol is its current plan; older rows are history (forecasts point at the plan that made
    them)."""

    __tablename__ = "served_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), nullable=True
    )
    candidate: Mapped[str] = mapped_column(String(64))
    point: Mapped[str] = mapped_column(String(16))
    scale: Mapped[str] = mapped_column(String(32))
    #: Whether the plan needs the model version's network (an LSTM point or its volatility head).
    uses_network: Mapped[bool] = mapped_column(Boolean, default=False)
    recalibrated: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text)
    #: ``forecasting.candidates.IntervalRecipe.to_dict()``; its ``calibration`` block is the ACI
    #: state, rewritten by every evaluate job that feeds matured forecasts back.
    recipe: Mapped[dict[str, Any]] = mapped_column(JSONType)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_served_plans_symbol_id", "symbol", "id"),)


class JobRun(Base):
    """The life of one job (APScheduler's job id): queued, running, and how it ended."""

    __tablename__ = "job_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str | None] = mapped_column(String(SYMBOL_LENGTH), nullable=True)
    status: Mapped[JobStatus] = mapped_column(
        _enum(JobStatus, "job_status"), default=JobStatus.QUEUED
    )
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    schedule_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_seconds: Mapped[float | None] = mapped_column(Double, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)

    __table_args__ = (
        Index("ix_job_runs_symbol_created_at", "symbol", "created_at"),
        Index("ix_job_runs_status", "status"),
        # One job per schedule fire time. APScheduler adds a fired job and advances its schedule
        # in two transactions; a node killed between them leaves the fire time to be fired again
        # by the next node. The second job's row is refused here and the job is skipped.
        # (On-demand jobs have no schedule_id, and NULLs never collide.)
        Index("uq_job_runs_schedule_fire", "schedule_id", "scheduled_at", unique=True),
    )


class Event(Base):
    """Something clients care about happened (``forecast.ready``, ``model.promoted``, ...).

    The auto-incrementing id is the server-sent-events id, so a client resumes with
    ``Last-Event-ID``.
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(48))
    symbol: Mapped[str | None] = mapped_column(String(SYMBOL_LENGTH), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_events_symbol_id", "symbol", "id"),)


class SchedulerHeartbeat(Base):
    """A scheduler node's sign of life, written every few seconds by the node itself.

    ``stockcast health`` reads it for the scheduler role: a process can be running with its event
    loop stuck, and only a fresh beat shows that the node's loop still turns and can write.
    """

    __tablename__ = "scheduler_heartbeats"

    node: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_scheduler_heartbeats_host_pid", "host", "pid"),)


__all__ = [
    "FINISHED_JOB_STATUSES",
    "Event",
    "JobRun",
    "JobStatus",
    "ModelArtifactRow",
    "ModelStatus",
    "ModelVersion",
    "PriceBar",
    "RetrainCadence",
    "SchedulerHeartbeat",
    "ServedPlan",
    "WatchedSymbol",
]
