"""One job per schedule fire time: a unique index on job_runs (schedule_id, scheduled_at).

APScheduler 4.0.0a6 adds a scheduled job and advances its schedule in separate transactions, so a
node killed between the two makes the next node fire the same time again; the scheduler records
every job here first and skips the one this index refuses.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 19:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "uq_job_runs_schedule_fire",
        "job_runs",
        ["schedule_id", "scheduled_at"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_job_runs_schedule_fire", table_name="job_runs")
