"""Queries on the job history (``job_runs``): every transition is idempotent, so any node may record
an APScheduler event it receives without coordinating with the others."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import utcnow
from db.models import FINISHED_JOB_STATUSES, JobRun, JobStatus
from db.repositories._dialect import dialect_insert


class JobNotFoundError(LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}")
        self.job_id = job_id


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record_queued(
        self,
        *,
        job_id: str,
        kind: str,
        symbol: str | None,
        parameters: dict[str, Any] | None = None,
        schedule_id: str | None = None,
        scheduled_at: datetime | None = None,
    ) -> bool:
        """Record a job as queued unless it is already known (a no-op the second time); returns
        whether this call recorded it."""
        statement = dialect_insert(self._session, JobRun).values(
            id=job_id,
            kind=kind,
            symbol=symbol,
            status=JobStatus.QUEUED,
            parameters=parameters or {},
            attempts=0,
            schedule_id=schedule_id,
            scheduled_at=scheduled_at,
            created_at=utcnow(),
        )
        # RETURNING, not rowcount: an ORM-enabled INSERT reports no reliable rowcount on
        # PostgreSQL (-1), while a row comes back only when this call inserted it.
        inserted = await self._session.execute(
            statement.on_conflict_do_nothing(index_elements=[JobRun.id]).returning(JobRun.id)
        )
        return inserted.first() is not None

    async def mark_running(
        self,
        *,
        job_id: str,
        kind: str,
        symbol: str | None,
        worker: str,
        parameters: dict[str, Any] | None = None,
        schedule_id: str | None = None,
        scheduled_at: datetime | None = None,
    ) -> JobRun:
        """Record that a worker started the job: status running, one more attempt."""
        await self.record_queued(
            job_id=job_id,
            kind=kind,
            symbol=symbol,
            parameters=parameters,
            schedule_id=schedule_id,
            scheduled_at=scheduled_at,
        )
        await self._session.execute(
            update(JobRun)
            .where(JobRun.id == job_id)
            .values(
                status=JobStatus.RUNNING,
                attempts=JobRun.attempts + 1,
                started_at=utcnow(),
                worker=worker,
                error=None,
            )
        )
        return await self.get(job_id, refresh=True)

    async def get(self, job_id: str, *, refresh: bool = False) -> JobRun:
        row = await self._session.get(JobRun, job_id, populate_existing=refresh)
        if row is None:
            raise JobNotFoundError(job_id)
        return row

    async def list(
        self,
        *,
        symbol: str | None = None,
        status: JobStatus | None = None,
        kind: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Sequence[JobRun]:
        query = select(JobRun).order_by(JobRun.created_at.desc(), JobRun.id).limit(limit)
        if symbol is not None:
            query = query.where(JobRun.symbol == symbol)
        if status is not None:
            query = query.where(JobRun.status == status)
        if kind is not None:
            query = query.where(JobRun.kind == kind)
        return (await self._session.execute(query.offset(offset))).scalars().all()

    async def count_by_status(self) -> dict[str, int]:
        result = await self._session.execute(
            select(JobRun.status, func.count()).group_by(JobRun.status)
        )
        return {JobStatus(status).value: int(count) for status, count in result}

    async def finish(
        self,
        job_id: str,
        *,
        status: JobStatus,
        error: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> bool:
        """Record how the job ended, once, race-free between nodes: one conditional ``UPDATE``;
        a job that already finished is left as it is. Returns whether this call changed the row.

        Several nodes may hear the same APScheduler event (an abandoned job is announced to all of
        them); exactly one of them gets ``True`` and acts on it (re-enqueues the job, say).
        """
        if status not in FINISHED_JOB_STATUSES:
            raise ValueError(f"{status} is not a final status")
        now = utcnow()
        started = (
            await self._session.execute(select(JobRun.started_at).where(JobRun.id == job_id))
        ).scalar_one_or_none()
        outcome = await self._session.execute(
            update(JobRun)
            .where(JobRun.id == job_id, JobRun.status.not_in(list(FINISHED_JOB_STATUSES)))
            .values(
                status=status,
                error=error,
                result=result,
                finished_at=now,
                duration_seconds=(now - started).total_seconds() if started else None,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(outcome, "rowcount", 0))

    async def record_retry(self, job_id: str, *, error: str) -> int:
        """Count one more attempt of a running job after a transient failure; returns attempts."""
        await self._session.execute(
            update(JobRun)
            .where(JobRun.id == job_id)
            .values(attempts=JobRun.attempts + 1, error=error)
            .execution_options(synchronize_session=False)
        )
        attempts = (
            await self._session.execute(select(JobRun.attempts).where(JobRun.id == job_id))
        ).scalar_one_or_none()
        if attempts is None:
            raise JobNotFoundError(job_id)
        return int(attempts)

    async def requeued_from(self, job_id: str) -> str | None:
        """The job that ``job_id`` was re-enqueued for (after its node died), if any."""
        result = await self._session.execute(
            select(JobRun.id).where(JobRun.result["requeued_as"].as_string() == job_id).limit(1)
        )
        return result.scalar_one_or_none()

    async def has_pending(self, *, symbol: str, kind: str, running: bool = True) -> bool:
        """Whether a job of ``kind`` for ``symbol`` is queued or running (avoids piling them up).

        ``running=False`` counts only jobs that have not started: a running ingest may already
        have read the clock, so a caller whose news is newer than its start needs a job of its
        own (the replay's next session), while a queued one will still see it."""
        statuses = [JobStatus.QUEUED, JobStatus.RUNNING] if running else [JobStatus.QUEUED]
        result = await self._session.execute(
            select(
                exists().where(
                    JobRun.symbol == symbol,
                    JobRun.kind == kind,
                    JobRun.status.in_(statuses),
                )
            )
        )
        return bool(result.scalar())

    async def pending_symbols(self, symbols: Collection[str], *, kind: str) -> set[str]:
        """Those of ``symbols`` with a job of ``kind`` queued or running, in one query (a
        refresh batch asks it of its fifty symbols before queueing their first trainings)."""
        if not symbols:
            return set()
        result = await self._session.execute(
            select(JobRun.symbol)
            .where(
                JobRun.symbol.in_(sorted(set(symbols))),
                JobRun.kind == kind,
                JobRun.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
            )
            .distinct()
        )
        return {symbol for symbol in result.scalars() if symbol is not None}

    async def pending_of_kind(self, kind: str) -> JobRun | None:
        """The oldest queued or running job of ``kind``, whatever its symbol: for a job of which
        one at a time is enough (the global retrain), the one a new request would duplicate."""
        result = await self._session.execute(
            select(JobRun)
            .where(JobRun.kind == kind, JobRun.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
            .order_by(JobRun.created_at, JobRun.id)
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def record_requeue(self, job_id: str, *, new_job_id: str) -> None:
        """Link a job that never finished (its node died) to the job re-enqueued in its place."""
        row = await self.get(job_id)
        row.result = {**(row.result or {}), "requeued_as": new_job_id}
        await self._session.flush()
