"""APScheduler 4's data store and event broker on the service database.

Both the scheduler (which runs jobs) and the API (which only enqueues them) open the same store, so
the factories live here, in the leaf package they both may import.

Choices, each deliberate:
- The data store serialises with JSON, not APScheduler's default pickle: job arguments written by
  one process are read by another, and nothing read from the database is ever unpickled.
- PostgreSQL gets the psycopg event broker (the asyncpg one fails with anyio >= 4.14, apscheduler
  issue 1141); SQLite gets the local broker, which only reaches the current process: SQLite serves
  one scheduler process only (two duplicate jobs, apscheduler issue 959).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from logging import getLogger

from apscheduler.abc import EventBroker
from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
from apscheduler.eventbrokers.local import LocalEventBroker
from apscheduler.eventbrokers.psycopg import PsycopgEventBroker
from apscheduler.serializers.json import JSONSerializer
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

logger = getLogger(__name__)


def create_data_store(engine: AsyncEngine) -> SQLAlchemyDataStore:
    """APScheduler's data store on ``engine`` (the service's own async engine)."""
    return SQLAlchemyDataStore(engine, serializer=JSONSerializer())


def create_event_broker(database_url: str) -> EventBroker:
    """The broker that carries APScheduler events between the processes sharing the database."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PsycopgEventBroker(conninfo)
    return LocalEventBroker()


def supports_several_processes(database_url: str) -> bool:
    """Whether several scheduler processes may share this database (PostgreSQL only)."""
    return make_url(database_url).get_backend_name() == "postgresql"


async def create_scheduler_tables(engine: AsyncEngine) -> None:
    """Create APScheduler's tables once, from one process (``stockcast db upgrade``).

    Starting the data store creates its schema; doing it here, before any node starts, avoids the
    race of two nodes running ``CREATE TYPE`` on an empty PostgreSQL database.
    """
    store = create_data_store(engine)
    broker = LocalEventBroker()
    async with AsyncExitStack() as stack:
        await broker.start(stack, logger)
        await store.start(stack, broker, logger)
