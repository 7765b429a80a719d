"""Engine and session factories. Called from a lifespan or ``main()``, never at import time.

Users give one database URL (``sqlite:///var/stockcast.db`` or ``postgresql://host/db``); the
async processes use aiosqlite / psycopg's async mode and migrations use the sync drivers, so the
URL is rewritten here rather than asking people for driver names.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000


#: The driver of each backend, for async processes and for the sync ones (Alembic).
_ASYNC_DRIVERS: Final = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
_SYNC_DRIVERS: Final = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def _with_driver(url: str | URL, drivers: dict[str, str]) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise ValueError(f"unsupported database backend {backend!r}")
    return parsed.set(drivername=drivers[backend])


def async_url(url: str | URL) -> URL:
    """The URL with the async driver of its backend."""
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str | URL) -> URL:
    """The URL with the sync driver of its backend (used by Alembic)."""
    return _with_driver(url, _SYNC_DRIVERS)


def _configure_sqlite(
    dbapi_connection: Any, _record: Any, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> None:
    # WAL lets the API read while the scheduler writes; busy_timeout makes writers wait for each
    # other instead of failing with "database is locked"; SQLite leaves foreign keys off otherwise.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_async_db_engine(
    url: str | URL, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS, **kwargs: Any
) -> AsyncEngine:
    """An async engine for ``url``; SQLite connections get WAL, a busy timeout and foreign keys.

    ``busy_timeout_ms``: how long a SQLite writer waits for a lock held elsewhere. The API uses a
    short one, so a write to a locked store gets its 503 in seconds instead of hanging.
    """
    target = async_url(url)
    if target.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(target, **kwargs)
    if target.get_backend_name() == "sqlite":
        event.listen(
            engine.sync_engine,
            "connect",
            partial(_configure_sqlite, busy_timeout_ms=busy_timeout_ms),
        )
    return engine


async def check_writable(engine: AsyncEngine, *, timeout_ms: int = 1000) -> None:
    """Raise ``OperationalError`` when a SQLite store cannot take a write within ``timeout_ms``
    (another process holds its write lock: in WAL mode reads still succeed, so a read alone says
    nothing). PostgreSQL answers writes whenever it answers at all: nothing more to check."""
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as connection:
        probe = await connection.execution_options(isolation_level="AUTOCOMMIT")
        try:
            await probe.exec_driver_sql(f"PRAGMA busy_timeout={int(timeout_ms)}")
            await probe.exec_driver_sql("BEGIN IMMEDIATE")
            await probe.exec_driver_sql("ROLLBACK")
        finally:
            # The probe's short busy timeout must not serve a later request: the pool drops it.
            await connection.invalidate()


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


def first_line(exc: BaseException) -> str:
    """The first line of a database error's text: drivers append the SQL, parameters and hints
    after it, which belong in a log, not in a one-line status or an HTTP answer."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
