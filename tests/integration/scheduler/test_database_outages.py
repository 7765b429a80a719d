"""A scheduler node waits out a database it cannot use and carries on: a SQLite file locked by
another process for longer than the busy timeout (a real ``BEGIN EXCLUSIVE``), PostgreSQL
backends killed under it (``pg_terminate_backend`` on the test's own database). No crash, no
lost job record, and the work queued before the fault is done after it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import anyio
import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from db.kinds import JobKind
from db.models import JobRun, JobStatus, SchedulerHeartbeat
from scheduler.config import RetryPolicy

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

#: Longer than SQLite's busy timeout (30 s): APScheduler's own store then raised and crashed.
SQLITE_LOCK_SECONDS = 35.0


async def _status(harness, job_id: str) -> JobStatus | None:
    async with harness.sessions() as session:
        row = await session.get(JobRun, job_id, populate_existing=True)
        return row.status if row else None


async def _succeeded(harness, job_id: str) -> bool:
    return await _status(harness, job_id) is JobStatus.SUCCEEDED


async def _beat_since(harness, moment: datetime) -> bool:
    async with harness.sessions() as session:
        beats = (await session.execute(select(SchedulerHeartbeat.beat_at))).scalars().all()
    return any(beat > moment for beat in beats)


async def _hold_sqlite_lock(database_url: str, seconds: float) -> None:
    path = make_url(database_url).database
    assert path
    lock = sqlite3.connect(path, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        await anyio.sleep(seconds)
    finally:
        lock.execute("ROLLBACK")
        lock.close()


def _kill_backends(database_url: str) -> int:
    url = make_url(database_url)
    admin = url.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (url.database,),
        ).fetchall()
    return len(rows)


async def test_a_node_outlives_a_database_it_cannot_use(harness) -> None:
    harness.write_prices("KO")
    # Retries that outlast the fault, as the default policy's (30 s, then 60 s ...) do: the
    # harness's sub-second ones would give up on a job caught by the fault on a busy machine.
    patient = RetryPolicy(max_attempts=6, initial_delay=1.0, multiplier=2.0, max_delay=8.0)
    async with harness.node(harness.config(retry=patient)) as node, harness.client() as client:
        first = await harness.enqueue(client, JobKind.INGEST, {"symbol": "DIS"}, symbol="DIS")
        await harness.wait_for(lambda: _succeeded(harness, first), within=60, what="an ingest")
        # Queued before the fault, run by the node around it.
        queued = await harness.enqueue(client, JobKind.INGEST, {"symbol": "KO"}, symbol="KO")

        if make_url(harness.database_url).get_backend_name() == "sqlite":
            await _hold_sqlite_lock(harness.database_url, SQLITE_LOCK_SECONDS)
        else:
            killed = 0
            for _ in range(4):  # every connection of the node, several times over
                killed += await anyio.to_thread.run_sync(_kill_backends, harness.database_url)
                await anyio.sleep(1.0)
            assert killed > 0
        fault_over = datetime.now(UTC)

        assert node.scheduler is not None, "the node's scheduler stopped"
        await harness.wait_for(
            lambda: _succeeded(harness, queued), within=90, what="the job queued before the fault"
        )
        after = await harness.enqueue(client, JobKind.INGEST, {"symbol": "DIS"}, symbol="DIS")
        await harness.wait_for(
            lambda: _succeeded(harness, after), within=60, what="a job queued after the fault"
        )
        await harness.wait_for(
            lambda: _beat_since(harness, fault_over), within=30, what="a heartbeat after it"
        )
        assert node.scheduler is not None
