"""Dialect-specific INSERT ... ON CONFLICT, the one construct SQLite and PostgreSQL spell alike but
SQLAlchemy exposes per dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """``INSERT`` for ``table`` that supports ``on_conflict_do_*`` on the session's backend."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for dialect {name!r}")
