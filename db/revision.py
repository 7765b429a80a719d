"""Reading the schema revision a database is at, for readiness checks.

The expected head comes from the caller (the composition root asks Alembic's script directory), so
``db`` needs no knowledge of where the migrations live.
"""

from __future__ import annotations

from sqlalchemy import column, inspect, select, table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

ALEMBIC_VERSION_TABLE = "alembic_version"


async def current_revision(engine: AsyncEngine) -> str | None:
    """The Alembic revision stamped in the database, or ``None`` if it was never migrated."""
    async with engine.connect() as connection:
        return await _read_revision(connection)


async def _read_revision(connection: AsyncConnection) -> str | None:
    has_table = await connection.run_sync(
        lambda sync: inspect(sync).has_table(ALEMBIC_VERSION_TABLE)
    )
    if not has_table:
        return None
    version_table = table(ALEMBIC_VERSION_TABLE, column("version_num"))
    result = await connection.execute(select(version_table.c.version_num))
    return result.scalar_one_or_none()
