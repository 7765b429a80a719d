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
from sqlalchemy import func, select, update
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


async def reconcile_running_jobs(engine: AsyncEngine) -> dict[str, int]:
    """Reset each task's running-job counter to the number of jobs a node actually holds.

    APScheduler 4.0.0a6 counts running jobs per task to enforce ``max_running_jobs``, but the
    counter drifts when a node dies: a job whose lease expired is handed to another node and
    counted again, and the first count is never given back. A task limited to one job at a time
    would then never run again. Every held job is eventually released (the counter goes down) or
    handed over (it is still one held job), so the true value is the number of jobs with an
    owner. The task rows are locked first, so no acquisition or release of their jobs interleaves.
    Returns the corrected counters of the tasks that were off.
    """
    tables = create_data_store(engine).get_table_definitions().tables
    tasks, jobs = tables["tasks"], tables["jobs"]
    held_query = (
        select(jobs.c.task_id, func.count())
        .where(jobs.c.acquired_by.is_not(None))
        .group_by(jobs.c.task_id)
    )
    async with engine.connect() as connection:
        # A cheap look first: the locking pass holds up acquisitions, so only drift pays for it.
        counters = (await connection.execute(select(tasks.c.id, tasks.c.running_jobs))).all()
        held: dict[str, int] = dict((await connection.execute(held_query)).all())
    if all(running == held.get(task_id, 0) for task_id, running in counters):
        return {}
    fixed: dict[str, int] = {}
    async with engine.begin() as connection:
        counters = (
            await connection.execute(select(tasks.c.id, tasks.c.running_jobs).with_for_update())
        ).all()
        held = dict((await connection.execute(held_query)).all())
        for task_id, running in counters:
            actual = int(held.get(task_id, 0))
            if running != actual:
                await connection.execute(
                    update(tasks).where(tasks.c.id == task_id).values(running_jobs=actual)
                )
                fixed[task_id] = actual
    if fixed:
        logger.warning("corrected running-job counters of APScheduler tasks: %s", fixed)
    return fixed
