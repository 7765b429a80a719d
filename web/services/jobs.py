"""Enqueueing jobs (the one path of ``db.enqueue``, through the API's scheduler client), and
reading the job history."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import JobRequest
from db.enqueue import enqueue_jobs
from db.kinds import JobKind
from db.models import JobStatus
from db.repositories import JobRepository
from web.queue import JobQueue
from web.schemas.jobs import JobOut, QueuedJob, job_out, job_url


class JobService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], queue: JobQueue) -> None:
        self._sessions = sessions
        self._queue = queue

    async def ensure_can_enqueue(self, kinds: Sequence[JobKind]) -> None:
        """Fail (503) before anything is written if any of ``kinds`` could not be enqueued."""
        await self._queue.scheduler_for(kinds)

    async def enqueue(self, requests: Sequence[JobRequest]) -> list[QueuedJob]:
        """Add each job to the data store, then record them all as queued, with a ``job.queued``
        event each, in one transaction (``db.enqueue.enqueue_jobs``)."""
        scheduler = await self._queue.scheduler_for([request.kind for request in requests])
        job_ids = await enqueue_jobs(
            scheduler, self._sessions, requests, result_expiration=self._queue.result_expiration
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
            for job_id, request in zip(job_ids, requests, strict=True)
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
