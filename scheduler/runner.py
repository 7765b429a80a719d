"""The wrapper every task runs in: records the job's life in ``job_runs``, retries transient
failures with exponential backoff, bounds the run time, and writes ``job.succeeded`` /
``job.failed`` events in the same transaction as the final status.

Transient means "the same call may work later": a data source error flagged ``transient``, a
timeout, a database that is briefly locked or unreachable. Everything else (unknown symbol,
invalid data, bad parameters, a training process that died) fails the job at once: retrying
would only repeat the failure and hide it for longer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import anyio
from apscheduler import Job, current_job
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from db.kinds import EventType, JobKind
from db.models import JobStatus
from db.repositories import EventRepository, JobRepository
from forecasting.sources import SourceError
from forecasting.symbols import InvalidSymbolError, normalize_symbol
from scheduler.runtime import WorkerRuntime, current_runtime

logger = logging.getLogger(__name__)

#: Longest error text kept in ``job_runs.error`` and event payloads (and, with the traceback,
#: under the 8000 bytes of a PostgreSQL notification that carries APScheduler's JobReleased).
ERROR_TEXT_LIMIT: Final = 2000
#: Never retried in place: a training costs minutes to hours of CPU, and one that timed out or
#: lost its database connection at the end is better left to its next schedule or to a person.
NOT_RETRIED: Final = frozenset({JobKind.RETRAIN})


class JobFailedError(RuntimeError):
    """Raised to APScheduler after a job's failure is recorded, so its outcome is ``error`` too.

    Only the message travels (APScheduler's JSON serializer stores job results): the full story
    is in ``job_runs``.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message)


@dataclass(frozen=True, kw_only=True)
class JobContext:
    """What a task body gets: the worker's resources and which job (and try) this is."""

    runtime: WorkerRuntime
    job_id: str
    kind: JobKind
    symbol: str | None
    attempt: int


TaskBody = Callable[[JobContext], Awaitable[dict[str, Any]]]


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same job again later may succeed."""
    if isinstance(exc, SourceError):
        return exc.transient
    return isinstance(exc, TimeoutError | OperationalError | InterfaceError)


def describe_error(exc: BaseException) -> str:
    """``Type: message`` in one line, short enough for a column and an event payload."""
    message = str(exc).strip() or "(no message)"
    text = f"{type(exc).__name__}: {message}"
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 3] + "..."


async def run_job(
    kind: JobKind,
    parameters: dict[str, Any],
    body: TaskBody,
    *,
    symbol: str | None = None,
) -> dict[str, Any]:
    """Run ``body`` as the current APScheduler job of ``kind``; returns its JSON-safe result.

    ``symbol`` (the raw kwarg) is validated with :func:`normalize_symbol` before anything else;
    an invalid one fails the job permanently and touches nothing.
    """
    runtime = current_runtime()
    job = current_job.get()
    job_id = str(job.id)
    with runtime.in_flight.track(job_id):
        return await _run_tracked(
            runtime, job, kind=kind, parameters=parameters, body=body, symbol=symbol
        )


async def _run_tracked(
    runtime: WorkerRuntime,
    job: Job,
    *,
    kind: JobKind,
    parameters: dict[str, Any],
    body: TaskBody,
    symbol: str | None,
) -> dict[str, Any]:
    job_id = str(job.id)
    normalized: str | None = None
    invalid: InvalidSymbolError | None = None
    if symbol is not None:
        try:
            normalized = normalize_symbol(symbol)
        except InvalidSymbolError as exc:
            invalid = exc
    try:
        async with runtime.sessions.begin() as session:
            await JobRepository(session).mark_running(
                job_id=job_id,
                kind=kind.value,
                symbol=normalized,
                worker=runtime.identity,
                parameters=parameters,
                schedule_id=job.schedule_id,
                scheduled_at=job.scheduled_fire_time,
            )
    except IntegrityError:
        if job.schedule_id is None:
            raise
        # job_runs holds one job per schedule fire time: this fire was already queued as another
        # job (a node died between adding it and advancing the schedule), which runs instead.
        fired = job.scheduled_fire_time.isoformat() if job.scheduled_fire_time else "?"
        logger.warning("skipping job %s: %s already fired for %s", job_id, job.schedule_id, fired)
        return {"skipped": f"duplicate fire of {job.schedule_id} at {fired}"}
    if invalid is not None:
        error = describe_error(invalid)
        await _record_failure(runtime, job_id, kind, None, error, attempts=1)
        raise JobFailedError(error) from invalid

    retry = runtime.config.retry
    timeout = runtime.config.timeout_for(kind.value)
    attempt = 1
    while True:
        context = JobContext(
            runtime=runtime, job_id=job_id, kind=kind, symbol=normalized, attempt=attempt
        )
        deadline: anyio.CancelScope | None = None
        try:
            with anyio.fail_after(timeout) as deadline:
                result = await body(context)
        except Exception as exc:
            error = describe_error(exc)
            if deadline is not None and deadline.cancelled_caught:
                error = f"TimeoutError: the job took longer than its {timeout:g} s limit"
            retryable = kind not in NOT_RETRIED and is_transient(exc)
            if retryable and attempt < retry.max_attempts:
                delay = retry.delay_before(attempt + 1)
                logger.warning(
                    "%s job %s (%s) attempt %d failed, retrying in %.3g s: %s",
                    kind.value,
                    job_id,
                    normalized or "-",
                    attempt,
                    delay,
                    error,
                )
                async with runtime.sessions.begin() as session:
                    await JobRepository(session).record_retry(
                        job_id, error=f"attempt {attempt} failed, retrying: {error}"
                    )
                attempt += 1
                await anyio.sleep(delay)
                continue
            logger.error(
                "%s job %s (%s) failed after %d attempt(s): %s",
                kind.value,
                job_id,
                normalized or "-",
                attempt,
                error,
            )
            await _record_failure(runtime, job_id, kind, normalized, error, attempts=attempt)
            raise JobFailedError(error) from exc
        await _record_success(runtime, job_id, kind, normalized, result)
        return result


async def _record_success(
    runtime: WorkerRuntime,
    job_id: str,
    kind: JobKind,
    symbol: str | None,
    result: dict[str, Any],
) -> None:
    async with runtime.sessions.begin() as session:
        changed = await JobRepository(session).finish(
            job_id, status=JobStatus.SUCCEEDED, result=result
        )
        if changed:
            await EventRepository(session).append(
                EventType.JOB_SUCCEEDED,
                symbol=symbol,
                payload={"job_id": job_id, "kind": kind.value, "result": result},
            )


async def _record_failure(
    runtime: WorkerRuntime,
    job_id: str,
    kind: JobKind,
    symbol: str | None,
    error: str,
    *,
    attempts: int,
) -> None:
    async with runtime.sessions.begin() as session:
        changed = await JobRepository(session).finish(job_id, status=JobStatus.FAILED, error=error)
        if changed:
            await EventRepository(session).append(
                EventType.JOB_FAILED,
                symbol=symbol,
                payload={
                    "job_id": job_id,
                    "kind": kind.value,
                    "status": JobStatus.FAILED.value,
                    "error": error,
                    "attempts": attempts,
                },
            )
