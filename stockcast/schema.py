"""Running the Alembic migrations and creating APScheduler's tables: the one place the schema of a
database is changed, used by ``stockcast db upgrade``, ``stockcast up`` and the tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from db.apscheduler_workarounds import create_scheduler_tables
from db.engine import create_async_db_engine
from db.revision import current_revision
from migrations import SCRIPT_LOCATION


def alembic_config(database_url: str) -> Config:
    """An Alembic config for ``database_url`` that works wherever the package is installed."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def head_revision() -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


def ensure_sqlite_directory(database_url: str) -> None:
    """Create the directory of a SQLite file so a fresh data dir works out of the box."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def upgrade_database(database_url: str) -> str:
    """Migrate to head, then create APScheduler's tables and tasks once; returns the revision."""
    ensure_sqlite_directory(database_url)
    command.upgrade(alembic_config(database_url), "head")
    asyncio.run(_create_scheduler_tables(database_url))
    return head_revision()


async def _create_scheduler_tables(database_url: str) -> None:
    from scheduler.tasks import register_tasks

    engine = create_async_db_engine(database_url)
    try:
        await create_scheduler_tables(engine)
        # Every task exists in the data store from here on, so the API can enqueue jobs by task
        # id before any worker has started.
        await register_tasks(engine)
    finally:
        await engine.dispose()


def database_revision(database_url: str) -> str | None:
    """The revision the database is at (``None`` if never migrated).

    A SQLite file that does not exist is reported as not migrated rather than created.
    """
    url = make_url(database_url)
    if (
        url.get_backend_name() == "sqlite"
        and url.database
        and not Path(url.database).expanduser().exists()
    ):
        return None

    async def read() -> str | None:
        engine = create_async_db_engine(database_url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    return asyncio.run(read())
