"""Query pieces the repositories share: the dialect-specific INSERT ... ON CONFLICT (the one
construct SQLite and PostgreSQL spell alike but SQLAlchemy exposes per dialect), and an optional
inclusive date range."""

from __future__ import annotations

from datetime import date
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """``INSERT`` for ``table`` that supports ``on_conflict_do_*`` on the session's backend."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for dialect {name!r}")


def is_postgresql(session: AsyncSession) -> bool:
    """Whether ``session`` talks to PostgreSQL (where a repository takes a faster path)."""
    return bool(session.get_bind().dialect.name == "postgresql")


S = TypeVar("S", bound=Select[Any])


def within_dates(
    query: S, column: QueryableAttribute[date], start: date | None, end: date | None
) -> S:
    """``query`` limited to ``start <= column <= end``; an absent bound is open."""
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column <= end)
    return query
