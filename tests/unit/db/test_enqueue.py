"""Recording a queued job is idempotent, and so is its ``job.queued`` event: however many nodes
hear that a schedule created a job, the history has one row and one announcement."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import JobQueued, decode_payload
from db.enqueue import record_queued
from db.kinds import JobKind
from db.repositories import EventRepository, JobRepository

pytestmark = pytest.mark.anyio


async def test_a_job_recorded_twice_is_announced_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    for expected in (True, False):
        async with sessions.begin() as session:
            recorded = await record_queued(
                session,
                job_id="j1",
                kind=JobKind.INGEST,
                symbol="DIS",
                parameters={"symbol": "DIS"},
                schedule_id="ingest:DIS",
            )
        assert recorded is expected
    async with sessions() as session:
        events = await EventRepository(session).since(0)
        job = await JobRepository(session).get("j1")
    assert [(e.type, e.symbol) for e in events] == [("job.queued", "DIS")]
    assert decode_payload(events[0].type, events[0].payload) == JobQueued(
        job_id="j1", kind="ingest"
    )
    assert (job.kind, job.parameters, job.schedule_id) == (
        "ingest",
        {"symbol": "DIS"},
        "ingest:DIS",
    )
