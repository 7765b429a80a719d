"""Job payloads: what ``POST`` endpoints answer about the jobs they enqueued, and job status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from db.models import JobRun, JobStatus


class QueuedJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job the request put on the scheduler's queue; follow ``url`` for its progress."""

    id: str
    kind: str
    symbol: str | None
    status: JobStatus
    parameters: dict[str, Any]
    url: str


class JobOut(msgspec.Struct, frozen=True, kw_only=True):
    """The life of one job as the scheduler recorded it."""

    id: str
    kind: str
    symbol: str | None
    status: JobStatus
    parameters: dict[str, Any]
    attempts: int
    schedule_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    worker: str | None
    error: str | None
    result: dict[str, Any] | None
    url: str


def job_url(job_id: str) -> str:
    return f"/jobs/{job_id}"


def job_out(row: JobRun) -> JobOut:
    return JobOut(
        id=row.id,
        kind=row.kind,
        symbol=row.symbol,
        status=JobStatus(row.status),
        parameters=dict(row.parameters or {}),
        attempts=row.attempts,
        schedule_id=row.schedule_id,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_seconds=row.duration_seconds,
        worker=row.worker,
        error=row.error,
        result=dict(row.result) if row.result is not None else None,
        url=job_url(row.id),
    )
