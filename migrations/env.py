"""Alembic environment: runs revisions with the sync driver of the configured database.

The URL comes from ``config.attributes["database_url"]`` (set by ``stockcast db upgrade`` and the
tests) or, for the plain ``alembic`` command, from ``STOCKCAST_DATABASE_URL``.
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection

from db.base import Base
from db.engine import create_sync_db_engine

# Importing the models registers every table on Base.metadata.
from db.models import WatchedSymbol  # noqa: F401

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("STOCKCAST_DATABASE_URL")
    if not url:
        raise RuntimeError("set STOCKCAST_DATABASE_URL (or use `stockcast db upgrade`)")
    return str(url)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Ignore tables that are not ours (APScheduler's) when comparing models and database."""
    if type_ == "table" and reflected and compare_to is None:
        return name in target_metadata.tables
    return True


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_sync_db_engine(_database_url())
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
