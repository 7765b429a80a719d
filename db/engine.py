"""Engine and session factories. Called from a lifespan or ``main()``, never at import time.

Users give one database URL (``sqlite:///var/stockcast.db`` or ``postgresql://host/db``); the
async processes use aiosqlite / psycopg's async mode and migrations use the sync drivers, so the
URL is rewritten here rather than asking people for driver names.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000


def async_url(url: str | URL) -> URL:
    """The URL with the async driver of its backend."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database backend {backend!r}")


def sync_url(url: str | URL) -> URL:
    """The URL with the sync driver of its backend (used by Alembic)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database backend {backend!r}")


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while the scheduler writes; busy_timeout makes writers wait for each
    # other instead of failing with "database is locked"; SQLite leaves foreign keys off otherwise.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_async_db_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``; SQLite connections get WAL, a busy timeout and foreign keys."""
    target = async_url(url)
    if target.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(target, **kwargs)
    if target.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
    return engine


def create_sync_db_engine(url: str | URL, **kwargs: Any) -> Engine:
    """A sync engine for ``url`` (migrations, and tools that are not async)."""
    target = sync_url(url)
    engine = create_engine(target, **kwargs)
    if target.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (handlers map them to payloads)."""
    return async_sessionmaker(engine, expire_on_commit=False)
