"""The job-history queries the scheduler added: an atomic final status (exactly one of several
nodes wins), retries counted, re-enqueue links, pending jobs, one job per schedule fire, and
APScheduler's running-job counters kept true."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.apscheduler_workarounds import reconcile_running_jobs
from db.jobstore import create_data_store
from db.models import JobStatus
from db.repositories import JobRepository

pytestmark = pytest.mark.anyio


async def test_only_the_first_final_status_counts(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        jobs = JobRepository(session)
        await jobs.mark_running(job_id="j1", kind="ingest", symbol="DIS", worker="a")
    async with sessions.begin() as session:
        assert await JobRepository(session).finish(
            "j1", status=JobStatus.ABANDONED, error="node a died"
        )
    async with sessions.begin() as session:
        assert not await JobRepository(session).finish("j1", status=JobStatus.SUCCEEDED)
        assert not await JobRepository(session).finish("missing", status=JobStatus.FAILED)
    async with sessions() as session:
        row = await JobRepository(session).get("j1")
    assert row.status is JobStatus.ABANDONED
    assert row.error == "node a died"
    assert row.duration_seconds is not None and row.duration_seconds >= 0
    with pytest.raises(ValueError, match="not a final status"):
        async with sessions.begin() as session:
            await JobRepository(session).finish("j1", status=JobStatus.RUNNING)


async def test_retries_requeues_and_pending_jobs(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        jobs = JobRepository(session)
        await jobs.mark_running(job_id="old", kind="ingest", symbol="DIS", worker="a")
        assert await jobs.record_retry("old", error="attempt 1 failed") == 2
        assert await jobs.has_pending(symbol="DIS", kind="ingest")
        # A running job may have read the clock already: it does not count as queued.
        assert not await jobs.has_pending(symbol="DIS", kind="ingest", running=False)
        assert not await jobs.has_pending(symbol="DIS", kind="retrain")
        await jobs.record_queued(job_id="new", kind="ingest", symbol="DIS")
        assert await jobs.has_pending(symbol="DIS", kind="ingest", running=False)
        await jobs.finish("old", status=JobStatus.ABANDONED, error="gone")
        await jobs.record_requeue("old", new_job_id="new")
    async with sessions() as session:
        jobs = JobRepository(session)
        assert await jobs.requeued_from("new") == "old"
        assert await jobs.requeued_from("old") is None
        assert (await jobs.get("old")).result == {"requeued_as": "new"}
        assert (await jobs.get("old")).attempts == 2


async def test_a_schedule_fire_time_holds_one_job(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    fired = datetime(2025, 11, 28, 18, 30, tzinfo=UTC)
    async with sessions.begin() as session:
        await JobRepository(session).record_queued(
            job_id="first",
            kind="ingest",
            symbol="DIS",
            schedule_id="ingest:DIS",
            scheduled_at=fired,
        )
        # On-demand jobs (no schedule) never collide.
        for job_id in ("x", "y"):
            await JobRepository(session).record_queued(job_id=job_id, kind="ingest", symbol="DIS")
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            await JobRepository(session).record_queued(
                job_id="again",
                kind="ingest",
                symbol="DIS",
                schedule_id="ingest:DIS",
                scheduled_at=fired,
            )


async def test_leaked_running_job_counters_are_corrected(engine: AsyncEngine) -> None:
    store = create_data_store(engine)
    tasks = store.get_table_definitions().tables["tasks"]
    # What a node's death leaves behind: a job handed to another node counted twice.
    async with engine.begin() as connection:
        await connection.execute(
            update(tasks).where(tasks.c.id == "sync_schedules").values(running_jobs=1)
        )
        await connection.execute(
            update(tasks).where(tasks.c.id == "ingest").values(running_jobs=-2)
        )
    assert await reconcile_running_jobs(engine) == {"sync_schedules": 0, "ingest": 0}
    assert await reconcile_running_jobs(engine) == {}
    async with engine.connect() as connection:
        counters = dict((await connection.execute(select(tasks.c.id, tasks.c.running_jobs))).all())
    assert set(counters.values()) == {0}
