"""Enqueueing jobs and recording them, and reading the job history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.kinds import EventType, JobKind
from db.models import JobStatus
from db.repositories import EventRepository, JobRepository
from web.queue import JobQueue
from web.schemas.jobs import JobOut, QueuedJob, job_out, job_url


@dataclass(frozen=True, kw_only=True)
class JobRequest:
    """A job to enqueue: the task, the symbol it concerns, its keyword arguments."""

    kind: JobKind
    symbol: str | None
    kwargs: dict[str, Any] = field(default_factory=dict)


class JobService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], queue: JobQueue) -> None:
        self._sessions = sessions
        self._queue = queue

    async def ensure_can_enqueue(self, kinds: Sequence[JobKind]) -> None:
        """Fail (503) before anything is written if any of ``kinds`` could not be enqueued."""
        await self._queue.ensure_tasks(kinds)

    async def enqueue(self, requests: Sequence[JobRequest]) -> list[QueuedJob]:
        """Add each job to the data store, then record them all as queued, with a ``job.queued``
        event each, in one transaction.

        The data store and ``job_runs`` cannot share a transaction; should the API die in
        between, the scheduler records the job when it starts it (``record_queued`` is
        idempotent), so the history catches up.
        """
        queued: list[tuple[str, JobRequest]] = []
        for request in requests:
            job_id = await self._queue.enqueue(request.kind, request.kwargs)
            queued.append((job_id, request))
        async with self._sessions() as session, session.begin():
            jobs = JobRepository(session)
            events = EventRepository(session)
            for job_id, request in queued:
                await jobs.record_queued(
                    job_id=job_id,
                    kind=request.kind.value,
                    symbol=request.symbol,
                    parameters=request.kwargs,
                )
                await events.append(
                    EventType.JOB_QUEUED,
                    symbol=request.symbol,
                    payload={"job_id": job_id, "kind": request.kind.value},
                )
        return [
            QueuedJob(
                id=job_id,
                kind=request.kind.value,
                symbol=request.symbol,
                status=JobStatus.QUEUED,
                parameters=request.kwargs,
                url=job_url(job_id),
            )
            for job_id, request in queued
        ]

    async def get(self, job_id: str) -> JobOut:
        async with self._sessions() as session:
            return job_out(await JobRepository(session).get(job_id))

    async def list(
        self,
        *,
        symbol: str | None,
        status: JobStatus | None,
        kind: JobKind | None,
        limit: int,
        offset: int,
    ) -> list[JobOut]:
        async with self._sessions() as session:
            rows = await JobRepository(session).list(
                symbol=symbol,
                status=status,
                kind=kind.value if kind is not None else None,
                limit=limit,
                offset=offset,
            )
            return [job_out(row) for row in rows]
