"""Recording what APScheduler decides on its own: jobs created by schedules, and jobs that ended
without the task wrapper seeing it (abandoned by a dead node, missed their start deadline,
cancelled at shutdown, unreadable).

APScheduler does not retry an abandoned job. The idempotent kinds (ingest, forecast, evaluate,
sync_schedules) are re-enqueued here once, and the old row points at the new job
(``result.requeued_as``); a retrain is left for its next schedule or a person, because it is
expensive and a node dying in the middle of one is more likely to happen again (memory).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final

from apscheduler import JobAdded, JobOutcome, JobReleased

from db.apscheduler_workarounds import job_running_elsewhere, unless_duplicate_fire
from db.contracts import JobFailed, JobRequest, decode_arguments
from db.enqueue import enqueue_jobs, record_queued
from db.kinds import JobKind
from db.models import JobStatus
from db.repositories import EventRepository, JobRepository
from scheduler.runtime import WorkerRuntime

logger = logging.getLogger(__name__)

KNOWN_KINDS: Final = frozenset(kind.value for kind in JobKind)
#: Kinds that may run twice without harm, so an interrupted one is simply queued again.
IDEMPOTENT_KINDS: Final = frozenset(
    {
        JobKind.INGEST,
        JobKind.FORECAST,
        JobKind.EVALUATE,
        JobKind.SYNC_SCHEDULES,
        JobKind.REFRESH,
        JobKind.REFRESH_BATCH,
    }
)
#: Schedules per exchange (``refresh:XNYS``), not per symbol.
EXCHANGE_KINDS: Final = frozenset({JobKind.REFRESH.value})

_STATUS_OF_OUTCOME: Final = {
    JobOutcome.error: JobStatus.FAILED,
    JobOutcome.missed_start_deadline: JobStatus.MISSED,
    JobOutcome.deserialization_failed: JobStatus.FAILED,
    JobOutcome.cancelled: JobStatus.CANCELLED,
    JobOutcome.abandoned: JobStatus.ABANDONED,
}


def symbol_of_schedule(schedule_id: str | None) -> str | None:
    """``ingest:DIS`` -> ``DIS``; schedules that are not per symbol have none."""
    if schedule_id is None or ":" not in schedule_id:
        return None
    kind, _, symbol = schedule_id.partition(":")
    return symbol if kind in KNOWN_KINDS and kind not in EXCHANGE_KINDS and symbol else None


def outcome_error(event: JobReleased) -> str:
    """A sentence for ``job_runs.error`` saying why APScheduler released the job."""
    if event.outcome is JobOutcome.error:
        kind = (event.exception_type or "Exception").rsplit(".", 1)[-1]
        return f"{kind}: {event.exception_message or '(no message)'}"
    if event.outcome is JobOutcome.missed_start_deadline:
        when = event.scheduled_start.isoformat() if event.scheduled_start else "its fire time"
        return f"missed its start deadline (scheduled for {when}; misfire grace time exceeded)"
    if event.outcome is JobOutcome.abandoned:
        return (
            f"abandoned: worker {event.scheduler_id} stopped while holding the job "
            "(its lease expired)"
        )
    if event.outcome is JobOutcome.cancelled:
        return f"cancelled: worker {event.scheduler_id} shut down before the job finished"
    return "the job could not be read from the data store (deserialization failed)"


@dataclass(frozen=True, kw_only=True)
class _EndedJob:
    """What the recorder needs to know of a job it just recorded as ended."""

    id: str
    symbol: str | None
    error: str
    parameters: dict[str, Any]
    already_a_requeue: bool


class OutcomeRecorder:
    """Subscribed to the event broker by the daemon; every node hears every event.

    Recording is idempotent and the final status is set by one conditional ``UPDATE``, so when
    several nodes hear that a job was abandoned exactly one of them re-enqueues it.
    """

    def __init__(self, runtime: WorkerRuntime) -> None:
        self._runtime = runtime

    async def on_job_added(self, event: JobAdded) -> None:
        """Make a job created by a schedule visible as queued (with its ``job.queued`` event and
        fire time), once, whichever node hears it first."""
        if event.schedule_id is None or event.task_id not in KNOWN_KINDS:
            return
        jobs = await self._runtime.scheduler.data_store.get_jobs([event.job_id])
        if not jobs:
            # Already run or released (a fire past its grace is released at once): the worker
            # that ran it, or the release, records it, with its fire time.
            return
        scheduled_at = jobs[0].scheduled_fire_time
        recorded = await self._record_queued(
            event, JobKind(event.task_id), dict(jobs[0].kwargs), scheduled_at
        )
        if recorded is None:
            # A second job for the same fire time (see scheduler.runner): it will be skipped.
            logger.warning("%s fired twice for %s", event.schedule_id, scheduled_at)

    async def on_job_released(self, event: JobReleased) -> None:
        if event.task_id not in KNOWN_KINDS or event.outcome is JobOutcome.success:
            return
        if event.outcome is JobOutcome.error and event.scheduler_id != self._runtime.identity:
            return  # the node that ran it records it (its wrapper usually already did)
        kind = JobKind(event.task_id)
        if await self._record_queued(event, kind, {}, event.scheduled_start) is None:
            return  # a duplicate fire that never ran: its original is recorded
        ended = await self._record_end(event, kind)
        if ended is None:
            return
        status, row = ended
        logger.warning("%s job %s (%s): %s", kind.value, row.id, row.symbol or "-", row.error)
        interrupted = status in (JobStatus.ABANDONED, JobStatus.CANCELLED)
        if interrupted and kind in IDEMPOTENT_KINDS and not row.already_a_requeue:
            await self._requeue(row.id, kind, row.symbol, row.parameters)

    async def _record_queued(
        self,
        event: JobAdded | JobReleased,
        kind: JobKind,
        parameters: dict[str, Any],
        scheduled_at: datetime | None,
    ) -> bool | None:
        """Record the job as queued (once, with its ``job.queued`` event); ``None`` when it is a
        second job for a schedule fire time that already has one."""
        return await unless_duplicate_fire(
            self._runtime.sessions,
            event.schedule_id,
            partial(
                record_queued,
                job_id=str(event.job_id),
                kind=kind,
                symbol=symbol_of_schedule(event.schedule_id),
                parameters=parameters,
                schedule_id=event.schedule_id,
                scheduled_at=scheduled_at,
            ),
        )

    async def _record_end(
        self, event: JobReleased, kind: JobKind
    ) -> tuple[JobStatus, _EndedJob] | None:
        """Record how APScheduler ended the job, with its ``job.failed`` event, unless another
        node already did (or the job is in fact running elsewhere)."""
        status = _STATUS_OF_OUTCOME[event.outcome]
        error = outcome_error(event)
        job_id = str(event.job_id)
        async with self._runtime.sessions.begin() as session:
            jobs = JobRepository(session)
            if event.outcome is JobOutcome.abandoned and await job_running_elsewhere(
                jobs, job_id, event.scheduler_id
            ):
                return None
            if not await jobs.finish(job_id, status=status, error=error):
                return None
            row = await jobs.get(job_id, refresh=True)
            await EventRepository(session).append(
                JobFailed(
                    job_id=job_id,
                    kind=kind.value,
                    status=status.value,
                    error=error,
                    attempts=row.attempts,
                ),
                symbol=row.symbol,
            )
            return status, _EndedJob(
                id=job_id,
                symbol=row.symbol,
                error=error,
                parameters=dict(row.parameters or {}),
                already_a_requeue=await jobs.requeued_from(job_id) is not None,
            )

    async def _requeue(
        self, job_id: str, kind: JobKind, symbol: str | None, parameters: dict[str, Any]
    ) -> None:
        runtime = self._runtime
        try:
            arguments = decode_arguments(kind, parameters)
        except ValueError as exc:
            logger.error("not re-enqueuing %s job %s: %s", kind.value, job_id, exc)
            return
        [new_id] = await enqueue_jobs(
            runtime.scheduler,
            runtime.sessions,
            [JobRequest(kind=kind, symbol=symbol, arguments=arguments)],
            result_expiration=timedelta(seconds=runtime.config.job_result_expiration),
        )
        async with runtime.sessions.begin() as session:
            await JobRepository(session).record_requeue(job_id, new_job_id=new_id)
        logger.info("re-enqueued interrupted %s job %s as %s", kind.value, job_id, new_id)
