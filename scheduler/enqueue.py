"""Adding a job to APScheduler's data store and recording it as queued in ``job_runs``.

The API enqueues the same way (``add_job`` by task id, then ``record_queued``); both orders of
``record_queued`` and the worker's ``mark_running`` are safe because recording is idempotent.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from apscheduler import AsyncScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.kinds import JobKind
from db.repositories import JobRepository


async def enqueue(
    scheduler: AsyncScheduler,
    sessions: async_sessionmaker[AsyncSession],
    kind: JobKind,
    *,
    symbol: str | None,
    kwargs: dict[str, Any],
    result_expiration: float = 0.0,
) -> str:
    """Queue one job of ``kind`` with ``kwargs`` (JSON values only); returns its id."""
    job_id = await scheduler.add_job(
        kind.value,
        kwargs=kwargs,
        result_expiration_time=timedelta(seconds=result_expiration),
    )
    async with sessions.begin() as session:
        await JobRepository(session).record_queued(
            job_id=str(job_id), kind=kind.value, symbol=symbol, parameters=kwargs
        )
    return str(job_id)
