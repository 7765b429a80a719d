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
from datetime import datetime
from typing import Final

from apscheduler import JobAdded, JobOutcome, JobReleased
from sqlalchemy.exc import IntegrityError

from db.kinds import EventType, JobKind
from db.models import JobStatus
from db.repositories import EventRepository, JobRepository
from scheduler.enqueue import enqueue
from scheduler.runtime import WorkerRuntime

logger = logging.getLogger(__name__)

KNOWN_KINDS: Final = frozenset(kind.value for kind in JobKind)
#: Kinds that may run twice without harm, so an interrupted one is simply queued again.
IDEMPOTENT_KINDS: Final = frozenset(
    {JobKind.INGEST, JobKind.FORECAST, JobKind.EVALUATE, JobKind.SYNC_SCHEDULES}
)

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
    return symbol if kind in KNOWN_KINDS and symbol else None


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


async def _running_elsewhere(jobs: JobRepository, job_id: str, dead_node: str) -> bool:
    """Whether another node already took over a job announced as abandoned by ``dead_node``.

    APScheduler's clean-up reads expired leases without locking them, so it can announce (and
    delete) a job that a live node re-acquired a moment earlier; that node is running it and will
    record how it ends. Treating it as abandoned would run it a second time.
    """
    row = await jobs.get(job_id, refresh=True)
    return row.status is JobStatus.RUNNING and row.worker not in (None, dead_node)


class OutcomeRecorder:
    """Subscribed to the event broker by the daemon; every node hears every event.

    Recording is idempotent and the final status is set by one conditional ``UPDATE``, so when
    several nodes hear that a job was abandoned exactly one of them re-enqueues it.
    """

    def __init__(self, runtime: WorkerRuntime) -> None:
        self._runtime = runtime

    async def on_job_added(self, event: JobAdded) -> None:
        """Make a job created by a schedule visible as queued, with its fire time."""
        if event.schedule_id is None or event.task_id not in KNOWN_KINDS:
            return
        jobs = await self._runtime.scheduler.data_store.get_jobs([event.job_id])
        scheduled_at: datetime | None = jobs[0].scheduled_fire_time if jobs else None
        parameters = dict(jobs[0].kwargs) if jobs else {}
        try:
            async with self._runtime.sessions.begin() as session:
                await JobRepository(session).record_queued(
                    job_id=str(event.job_id),
                    kind=event.task_id,
                    symbol=symbol_of_schedule(event.schedule_id),
                    parameters=parameters,
                    schedule_id=event.schedule_id,
                    scheduled_at=scheduled_at,
                )
        except IntegrityError:
            # A second job for the same fire time (see scheduler.runner): it will be skipped.
            logger.warning("%s fired twice for %s", event.schedule_id, scheduled_at)

    async def on_job_released(self, event: JobReleased) -> None:
        if event.task_id not in KNOWN_KINDS or event.outcome is JobOutcome.success:
            return
        if event.outcome is JobOutcome.error and event.scheduler_id != self._runtime.identity:
            return  # the node that ran it records it (its wrapper usually already did)
        status = _STATUS_OF_OUTCOME[event.outcome]
        error = outcome_error(event)
        job_id = str(event.job_id)
        kind = JobKind(event.task_id)
        try:
            async with self._runtime.sessions.begin() as session:
                await JobRepository(session).record_queued(
                    job_id=job_id,
                    kind=kind.value,
                    symbol=symbol_of_schedule(event.schedule_id),
                    schedule_id=event.schedule_id,
                    scheduled_at=event.scheduled_start,
                )
        except IntegrityError:
            return  # a duplicate fire that never ran: its original is recorded
        async with self._runtime.sessions.begin() as session:
            jobs = JobRepository(session)
            if event.outcome is JobOutcome.abandoned and await _running_elsewhere(
                jobs, job_id, event.scheduler_id
            ):
                return
            changed = await jobs.finish(job_id, status=status, error=error)
            if not changed:
                return
            row = await jobs.get(job_id, refresh=True)
            await EventRepository(session).append(
                EventType.JOB_FAILED,
                symbol=row.symbol,
                payload={
                    "job_id": job_id,
                    "kind": kind.value,
                    "status": status.value,
                    "error": error,
                    "attempts": row.attempts,
                },
            )
            parameters = dict(row.parameters or {})
            symbol = row.symbol
            already_a_requeue = await jobs.requeued_from(job_id) is not None
        logger.warning("%s job %s (%s): %s", kind.value, job_id, symbol or "-", error)
        interrupted = status in (JobStatus.ABANDONED, JobStatus.CANCELLED)
        if interrupted and kind in IDEMPOTENT_KINDS and not already_a_requeue:
            await self._requeue(job_id, kind, symbol, parameters)

    async def _requeue(
        self, job_id: str, kind: JobKind, symbol: str | None, parameters: dict[str, object]
    ) -> None:
        runtime = self._runtime
        new_id = await enqueue(
            runtime.scheduler,
            runtime.sessions,
            kind,
            symbol=symbol,
            kwargs=parameters,
            result_expiration=runtime.config.job_result_expiration,
        )
        async with runtime.sessions.begin() as session:
            await JobRepository(session).record_requeue(job_id, new_job_id=new_id)
        logger.info("re-enqueued interrupted %s job %s as %s", kind.value, job_id, new_id)
