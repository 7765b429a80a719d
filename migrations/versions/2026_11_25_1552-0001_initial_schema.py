"""Initial schema: watchlist, price bars, model versions and artifacts, forecasts, job runs, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 15:52:28.545926+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import db.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=True),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_symbol_id", "events", ["symbol", "id"], unique=False)

    op.create_table(
        "job_runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "succeeded",
                "failed",
                "abandoned",
                "cancelled",
                "missed",
                name="job_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "parameters", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.String(length=64), nullable=True),
        sa.Column("scheduled_at", db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("created_at", db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Double(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "result", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index("ix_job_runs_status", "job_runs", ["status"], unique=False)
    op.create_index(
        "ix_job_runs_symbol_created_at", "job_runs", ["symbol", "created_at"], unique=False
    )

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("model_name", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "champion",
                "challenger",
                "rejected",
                "retired",
                name="model_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("mlflow_run_id", sa.String(length=64), nullable=True),
        sa.Column("registry_name", sa.String(length=128), nullable=True),
        sa.Column("registry_version", sa.Integer(), nullable=True),
        sa.Column(
            "params", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "metrics", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "baseline_metrics",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "backtest", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("train_start", sa.Date(), nullable=True),
        sa.Column("train_end", sa.Date(), nullable=True),
        sa.Column("training_seconds", sa.Double(), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("promoted_at", db.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
    )
    op.create_index(
        "ix_model_versions_symbol_status", "model_versions", ["symbol", "status"], unique=False
    )
    op.create_index(
        "uq_model_versions_one_champion",
        "model_versions",
        ["symbol"],
        unique=True,
        postgresql_where=sa.text("status = 'champion'"),
        sqlite_where=sa.text("status = 'champion'"),
    )

    op.create_table(
        "price_bars",
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("adj_close", sa.Double(), nullable=True),
        sa.Column("volume", sa.Double(), nullable=False),
        sa.Column("fetched_at", db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "date", name=op.f("pk_price_bars")),
    )
    op.create_table(
        "symbols",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("exchange", sa.String(length=8), nullable=False),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("lookback", sa.Integer(), nullable=False),
        sa.Column(
            "retrain_cadence",
            sa.Enum(
                "daily",
                "weekly",
                "monthly",
                name="retrain_cadence",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", db.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("horizon BETWEEN 1 AND 30", name=op.f("ck_symbols_horizon_range")),
        sa.CheckConstraint("lookback BETWEEN 5 AND 500", name=op.f("ck_symbols_lookback_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_symbols")),
        sa.UniqueConstraint("symbol", name=op.f("uq_symbols_symbol")),
    )
    op.create_table(
        "forecasts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("model_kind", sa.String(length=16), nullable=False),
        sa.Column("issued_at", db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_observed_date", sa.Date(), nullable=False),
        sa.Column("last_close", sa.Double(), nullable=False),
        sa.Column("target_date", sa.Date(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("point", sa.Double(), nullable=False),
        sa.Column("lower_80", sa.Double(), nullable=False),
        sa.Column("upper_80", sa.Double(), nullable=False),
        sa.Column("lower_95", sa.Double(), nullable=False),
        sa.Column("upper_95", sa.Double(), nullable=False),
        sa.Column("naive", sa.Double(), nullable=False),
        sa.Column("actual", sa.Double(), nullable=True),
        sa.Column("error", sa.Double(), nullable=True),
        sa.Column("evaluated_at", db.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("step >= 1", name=op.f("ck_forecasts_step_positive")),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_forecasts_model_version_id_model_versions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forecasts")),
        sa.UniqueConstraint(
            "symbol", "issued_at", "step", name=op.f("uq_forecasts_symbol_issued_at_step")
        ),
    )
    op.create_index(
        "ix_forecasts_symbol_issued_at", "forecasts", ["symbol", "issued_at"], unique=False
    )
    op.create_index(
        "ix_forecasts_symbol_target_date", "forecasts", ["symbol", "target_date"], unique=False
    )

    op.create_table(
        "model_artifacts",
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.Column(
            "metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_artifacts_model_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_version_id", name=op.f("pk_model_artifacts")),
    )


def downgrade() -> None:
    op.drop_table("model_artifacts")
    op.drop_index("ix_forecasts_symbol_target_date", table_name="forecasts")
    op.drop_index("ix_forecasts_symbol_issued_at", table_name="forecasts")

    op.drop_table("forecasts")
    op.drop_table("symbols")
    op.drop_table("price_bars")
    op.drop_index(
        "uq_model_versions_one_champion",
        table_name="model_versions",
        postgresql_where=sa.text("status = 'champion'"),
        sqlite_where=sa.text("status = 'champion'"),
    )
    op.drop_index("ix_model_versions_symbol_status", table_name="model_versions")

    op.drop_table("model_versions")
    op.drop_index("ix_job_runs_symbol_created_at", table_name="job_runs")
    op.drop_index("ix_job_runs_status", table_name="job_runs")

    op.drop_table("job_runs")
    op.drop_index("ix_events_symbol_id", table_name="events")

    op.drop_table("events")
