"""Served plans: what each symbol serves, with its online calibration state.

Kept in the database so the intervals adapt day by day and a restarted scheduler continues where
it stopped; forecast rows remember the plan that issued them and what its calibration needs once
they mature, and their model kind holds a plan's candidate name.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 17:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import db.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "served_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=16), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("candidate", sa.String(length=64), nullable=False),
        sa.Column("point", sa.String(length=16), nullable=False),
        sa.Column("scale", sa.String(length=32), nullable=False),
        sa.Column("uses_network", sa.Boolean(), nullable=False),
        sa.Column("recalibrated", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recipe", _json(), nullable=False),
        sa.Column("evidence", _json(), nullable=False),
        sa.Column("created_at", db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_served_plans_model_version_id_model_versions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_served_plans")),
    )
    op.create_index("ix_served_plans_symbol_id", "served_plans", ["symbol", "id"], unique=False)
    with op.batch_alter_table("forecasts") as batch:
        # A plan's forecasts are labelled with its candidate (``drift+ewma_shrunk``).
        batch.alter_column(
            "model_kind", existing_type=sa.String(length=16), type_=sa.String(length=48)
        )
        batch.add_column(sa.Column("served_plan_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("calibration", _json(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_forecasts_served_plan_id_served_plans"),
            "served_plans",
            ["served_plan_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("forecasts") as batch:
        batch.drop_constraint(op.f("fk_forecasts_served_plan_id_served_plans"), type_="foreignkey")
        batch.drop_column("calibration")
        batch.drop_column("served_plan_id")
        batch.alter_column(
            "model_kind", existing_type=sa.String(length=48), type_=sa.String(length=16)
        )
    op.drop_index("ix_served_plans_symbol_id", table_name="served_plans")
    op.drop_table("served_plans")
