"""The one way a job is queued, by the API and by the scheduler alike: the job goes into
APScheduler's data store (by task id, so the API needs none of the task's code), then its
``job_runs`` row and its ``job.queued`` event are written in one transaction.

The data store and ``job_runs`` cannot share a transaction. Should the process die in between, the
worker records the job when it starts it (recording is idempotent), so the history catches up; the
``job.queued`` event is written exactly once, by whoever records the row first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from apscheduler import AsyncScheduler
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import JobQueued, JobRequest
from db.engine import first_line
from db.kinds import JobKind
from db.repositories import EventRepository, JobRepository


class JobQueueUnavailableError(RuntimeError):
    """APScheduler's data store cannot take jobs right now (database down or not migrated)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the job queue is unavailable: {reason}")
        self.reason = reason


async def enqueue_jobs(
    scheduler: AsyncScheduler,
    sessions: async_sessionmaker[AsyncSession],
    requests: Sequence[JobRequest],
    *,
    result_expiration: timedelta,
    along_with: Callable[[AsyncSession], Awaitable[object]] | None = None,
) -> list[str]:
    """Add every job to the data store, then record them all as queued; returns their ids in the
    order of ``requests``. APScheduler keeps each result for ``result_expiration``.

    ``along_with`` writes first in the recording transaction: whatever it records (the replay's
    announcement of a session) is never visible without the jobs it queued, so no reader sees
    the news and an idle queue at once."""
    job_ids: list[str] = []
    for request in requests:
        try:
            added = await scheduler.add_job(
                request.kind.value, kwargs=request.kwargs, result_expiration_time=result_expiration
            )
        except SQLAlchemyError as exc:
            raise JobQueueUnavailableError(first_line(exc)) from exc
        job_ids.append(str(added))
    async with sessions.begin() as session:
        if along_with is not None:
            await along_with(session)
        for job_id, request in zip(job_ids, requests, strict=True):
            await record_queued(
                session,
                job_id=job_id,
                kind=request.kind,
                symbol=request.symbol,
                parameters=request.kwargs,
            )
    return job_ids


async def record_queued(
    session: AsyncSession,
    *,
    job_id: str,
    kind: JobKind,
    symbol: str | None,
    parameters: dict[str, Any],
    schedule_id: str | None = None,
    scheduled_at: datetime | None = None,
) -> bool:
    """Record a job as queued, with its ``job.queued`` event, unless it is already recorded;
    returns whether this call recorded it. Also for jobs a schedule created."""
    recorded = await JobRepository(session).record_queued(
        job_id=job_id,
        kind=kind.value,
        symbol=symbol,
        parameters=parameters,
        schedule_id=schedule_id,
        scheduled_at=scheduled_at,
    )
    if recorded:
        await EventRepository(session).append(
            JobQueued(job_id=job_id, kind=kind.value), symbol=symbol
        )
    return recorded
