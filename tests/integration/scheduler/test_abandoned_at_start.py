"""At a node's start, jobs that ``job_runs`` says run on a gone node are recorded abandoned, with
the reason and a ``job.failed`` event; a live node's jobs (fresh heartbeat) are left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from db.models import Event, JobRun, JobStatus
from db.repositories import HeartbeatRepository, JobRepository
from scheduler.config import SchedulerConfig
from scheduler.reconcile import record_abandoned_attempts

pytestmark = pytest.mark.anyio


async def test_a_dead_nodes_running_jobs_are_recorded_abandoned(
    database_url: str, sessions
) -> None:
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        jobs = JobRepository(session)
        for job_id, worker in (
            ("job-dead", "node-dead"),
            ("job-live", "node-live"),
            ("job-me", "me"),
        ):
            await jobs.mark_running(job_id=job_id, kind="retrain", symbol="KO", worker=worker)
        beats = HeartbeatRepository(session)
        await beats.beat(
            node="node-dead", host="h", pid=1, role="both", at=now - timedelta(hours=1)
        )
        await beats.beat(node="node-live", host="h", pid=2, role="both", at=now)
    config = SchedulerConfig(database_url=database_url, source="sample")

    abandoned = await record_abandoned_attempts(sessions, config, identity="me")

    # SQLite has one node at a time (its scheduler lock): every other node is gone.
    expected = ["job-dead", "job-live"] if config.is_sqlite else ["job-dead"]
    assert sorted(abandoned) == expected
    async with sessions() as session:
        rows = {row.id: row for row in (await session.execute(select(JobRun))).scalars()}
        events = (await session.execute(select(Event).where(Event.type == "job.failed"))).scalars()
        failed = {event.payload["job_id"]: event.payload for event in events}
    dead = rows["job-dead"]
    assert dead.status is JobStatus.ABANDONED
    assert dead.error is not None
    assert "worker node-dead stopped during attempt 1" in dead.error
    assert failed["job-dead"]["status"] == "abandoned"
    assert rows["job-me"].status is JobStatus.RUNNING
    if not config.is_sqlite:
        assert rows["job-live"].status is JobStatus.RUNNING
    # Once: a second start records nothing more.
    assert await record_abandoned_attempts(sessions, config, identity="me") == []
