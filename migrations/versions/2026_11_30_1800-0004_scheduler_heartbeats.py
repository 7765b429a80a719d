"""Scheduler heartbeats: one row per scheduler node, its last sign of life.

``stockcast health`` checks a scheduler node's beat, so a container whose scheduler process runs
but whose loop is stuck (or cannot write) is reported unhealthy.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 18:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduler_heartbeats",
        sa.Column("node", sa.String(200), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("started_at", db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("beat_at", db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_scheduler_heartbeats")),
    )
    op.create_index("ix_scheduler_heartbeats_host_pid", "scheduler_heartbeats", ["host", "pid"])


def downgrade() -> None:
    op.drop_index("ix_scheduler_heartbeats_host_pid", table_name="scheduler_heartbeats")
    op.drop_table("scheduler_heartbeats")
