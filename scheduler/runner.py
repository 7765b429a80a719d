"""The wrapper every task runs in: decodes the job's arguments (the worker's edge: the symbol is
normalised here, once), records the job's life in ``job_runs``, retries transient failures with
exponential backoff (tenacity), bounds the run time, and writes ``job.succeeded`` /
``job.failed`` events in the same transaction as the final status.

Transient means "the same call may work later": a data source error flagged ``transient``, a
timeout, a database that is briefly locked or unreachable. Everything else (unknown symbol,
invalid data, bad parameters, a training process that died) fails the job at once: retrying
would only repeat the failure and hide it for longer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Final, Generic, TypeVar

import anyio
import msgspec
from apscheduler import Job, current_job
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from db.apscheduler_workarounds import unless_duplicate_fire
from db.contracts import (
    JobArguments,
    JobFailed,
    JobResult,
    JobSucceeded,
    Skipped,
    decode_arguments,
    to_json,
)
from db.enqueue import record_queued
from db.kinds import JobKind
from db.models import JobStatus
from db.repositories import EventRepository, JobRepository
from forecasting.sources import SourceError
from forecasting.symbols import normalize_symbol
from scheduler.job_logs import is_expected_failure
from scheduler.runtime import WorkerRuntime, current_runtime

logger = logging.getLogger(__name__)

#: Longest error text kept in ``job_runs.error`` and event payloads (and, with the traceback,
#: under the 8000 bytes of a PostgreSQL notification that carries APScheduler's JobReleased).
ERROR_TEXT_LIMIT: Final = 2000
#: Never retried in place: a training costs minutes to hours of CPU, and one that timed out or
#: lost its database connection at the end is better left to its next schedule or to a person.
NOT_RETRIED: Final = frozenset({JobKind.RETRAIN})

A = TypeVar("A", bound=JobArguments)


class JobFailedError(RuntimeError):
    """Raised to APScheduler after a job's failure is recorded, so its outcome is ``error`` too.

    Only the message travels (APScheduler's JSON serializer stores job results): the full story
    is in ``job_runs``.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message)


class JobTimeoutError(TimeoutError):
    """The job ran past its time limit (``SchedulerConfig.job_timeouts``)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the job took longer than its {seconds:g} s limit")
        self.seconds = seconds


@dataclass(frozen=True, kw_only=True)
class JobContext(Generic[A]):
    """What a task body gets: the worker's resources, which job (and try) this is, and the job's
    decoded arguments (their symbol already normalised)."""

    runtime: WorkerRuntime
    job_id: str
    kind: JobKind
    arguments: A
    attempt: int

    @property
    def symbol(self) -> str | None:
        symbol = getattr(self.arguments, "symbol", None)
        return symbol if isinstance(symbol, str) else None


TaskBody = Callable[[JobContext[Any]], Awaitable[JobResult]]


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


async def run_job(kind: JobKind, kwargs: dict[str, Any], body: TaskBody) -> dict[str, Any]:
    """Run ``body`` as the current APScheduler job of ``kind`` with the job's ``kwargs``; returns
    its result as JSON. Arguments that do not decode (an invalid symbol, an unknown or misshapen
    parameter) fail the job permanently and touch nothing."""
    runtime = current_runtime()
    job = current_job.get()
    with runtime.in_flight.track(str(job.id)):
        return await _run_tracked(runtime, job, kind=kind, kwargs=kwargs, body=body)


async def _run_tracked(
    runtime: WorkerRuntime, job: Job, *, kind: JobKind, kwargs: dict[str, Any], body: TaskBody
) -> dict[str, Any]:
    job_id = str(job.id)
    arguments, invalid = _decode(kind, kwargs)
    symbol = getattr(arguments, "symbol", None)
    if not await _record_start(runtime, job, kind=kind, kwargs=kwargs, symbol=symbol):
        fired = job.scheduled_fire_time.isoformat() if job.scheduled_fire_time else "?"
        logger.warning("skipping job %s: %s already fired for %s", job_id, job.schedule_id, fired)
        return to_json(Skipped(skipped=f"duplicate fire of {job.schedule_id} at {fired}"))
    if arguments is None:
        error = describe_error(invalid or ValueError("undecodable arguments"))
        await _record_failure(runtime, job_id, kind, None, error, attempts=1)
        raise JobFailedError(error) from invalid
    context = JobContext(runtime=runtime, job_id=job_id, kind=kind, arguments=arguments, attempt=1)
    retrying = _retrying(context)
    try:
        result = await _run_with_retries(retrying, context, body)
    except Exception as exc:
        error = describe_error(exc)
        attempts = int(retrying.statistics.get("attempt_number", 1))
        logger.error(
            "%s job %s (%s) failed after %d attempt(s): %s",
            kind.value,
            job_id,
            symbol or "-",
            attempts,
            error,
            # One line for an expected failure; a bug keeps its traceback (scheduler.job_logs).
            exc_info=None if is_expected_failure(exc) else exc,
        )
        await _record_failure(runtime, job_id, kind, symbol, error, attempts=attempts)
        raise JobFailedError(error) from exc
    await _record_success(runtime, job_id, kind, symbol, to_json(result))
    return to_json(result)


def _decode(kind: JobKind, kwargs: dict[str, Any]) -> tuple[JobArguments | None, ValueError | None]:
    """The job's arguments with their symbol normalised, or the reason they are unusable."""
    try:
        arguments = decode_arguments(kind, kwargs)
        symbol = getattr(arguments, "symbol", None)
        if symbol is not None:
            arguments = msgspec.structs.replace(arguments, symbol=normalize_symbol(symbol))
    except ValueError as exc:  # msgspec.ValidationError, InvalidSymbolError
        return None, exc
    return arguments, None


async def _record_start(
    runtime: WorkerRuntime, job: Job, *, kind: JobKind, kwargs: dict[str, Any], symbol: str | None
) -> bool:
    """Mark the job running; ``False`` when it is a second job for a schedule fire time."""

    async def mark(session: AsyncSession) -> bool:
        # A job can start before whoever queued it has recorded it (the data store and job_runs
        # are two transactions): then this records it, and announces it with its job.queued
        # event, as the queueing side would have.
        await record_queued(
            session,
            job_id=str(job.id),
            kind=kind,
            symbol=symbol,
            parameters=kwargs,
            schedule_id=job.schedule_id,
            scheduled_at=job.scheduled_fire_time,
        )
        await JobRepository(session).mark_running(
            job_id=str(job.id),
            kind=kind.value,
            symbol=symbol,
            worker=runtime.identity,
            parameters=kwargs,
            schedule_id=job.schedule_id,
            scheduled_at=job.scheduled_fire_time,
        )
        return True

    async def write() -> bool:
        return bool(await unless_duplicate_fire(runtime.sessions, job.schedule_id, mark))

    # A job that starts while the database cannot be written (killed connections, a lock) waits
    # for it like its outcome does, instead of failing before it ran.
    return await until_stored(write, what=f"the start of job {job.id}")


_T = TypeVar("_T")

#: How long a job's outcome waits for a database that cannot be written (locked, restarting)
#: before the write is given up: the job's work is done, and losing its record loses it.
STORE_PATIENCE_S = 600.0


async def until_stored(write: Callable[[], Awaitable[_T]], *, what: str) -> _T:
    """Run ``write`` (one transaction) until the database takes it: a locked SQLite file or a
    killed PostgreSQL connection is waited out with backoff, up to ``STORE_PATIENCE_S``."""
    retrying = AsyncRetrying(
        stop=stop_after_delay(STORE_PATIENCE_S),
        wait=wait_exponential(min=0.5, max=10),
        retry=retry_if_exception_type((OperationalError, InterfaceError)),
        before_sleep=lambda state: logger.warning(
            "database unavailable while recording %s (try %d), retrying: %s",
            what,
            state.attempt_number,
            state.outcome.exception() if state.outcome else None,
        ),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await write()
    raise AssertionError("tenacity ended without an outcome")  # pragma: no cover


def _retrying(context: JobContext[Any]) -> AsyncRetrying:
    """Tenacity's loop for one job: transient failures are tried again after the retry policy's
    wait, until ``max_attempts`` (once only for the kinds in :data:`NOT_RETRIED`)."""
    retry = context.runtime.config.retry
    return AsyncRetrying(
        stop=stop_after_attempt(1 if context.kind in NOT_RETRIED else retry.max_attempts),
        wait=retry.wait(),
        retry=retry_if_exception(is_transient),
        before_sleep=partial(_record_retry, context),
        sleep=anyio.sleep,
        reraise=True,
    )


async def _run_with_retries(
    retrying: AsyncRetrying, context: JobContext[Any], body: TaskBody
) -> JobResult:
    """Run ``body`` until it succeeds, fails for good, or the tries run out."""
    timeout = context.runtime.config.timeout_for(context.kind.value)
    async for attempt in retrying:
        with attempt:
            number = attempt.retry_state.attempt_number
            return await _within(timeout, body, replace(context, attempt=number))
    raise AssertionError("tenacity ended without an outcome")  # pragma: no cover


async def _within(seconds: float, body: TaskBody, context: JobContext[Any]) -> JobResult:
    with anyio.move_on_after(seconds) as deadline:
        return await body(context)
    if deadline.cancelled_caught:
        raise JobTimeoutError(seconds)
    raise AssertionError("the job body returned nothing")  # pragma: no cover


async def _record_retry(context: JobContext[Any], state: RetryCallState) -> None:
    """Count the failed try in ``job_runs`` before tenacity waits for the next one."""
    exc = state.outcome.exception() if state.outcome is not None else None
    error = describe_error(exc) if exc is not None else "(unknown error)"
    delay = state.upcoming_sleep
    logger.warning(
        "%s job %s (%s) attempt %d failed, retrying in %.3g s: %s",
        context.kind.value,
        context.job_id,
        context.symbol or "-",
        state.attempt_number,
        delay,
        error,
    )
    async with context.runtime.sessions.begin() as session:
        await JobRepository(session).record_retry(
            context.job_id, error=f"attempt {state.attempt_number} failed, retrying: {error}"
        )


async def _record_success(
    runtime: WorkerRuntime,
    job_id: str,
    kind: JobKind,
    symbol: str | None,
    result: dict[str, Any],
) -> None:
    async def write() -> None:
        async with runtime.sessions.begin() as session:
            changed = await JobRepository(session).finish(
                job_id, status=JobStatus.SUCCEEDED, result=result
            )
            if changed:
                await EventRepository(session).append(
                    JobSucceeded(job_id=job_id, kind=kind.value, result=result), symbol=symbol
                )

    await until_stored(write, what=f"the outcome of job {job_id}")


async def _record_failure(
    runtime: WorkerRuntime,
    job_id: str,
    kind: JobKind,
    symbol: str | None,
    error: str,
    *,
    attempts: int,
) -> None:
    async def write() -> None:
        async with runtime.sessions.begin() as session:
            changed = await JobRepository(session).finish(
                job_id, status=JobStatus.FAILED, error=error
            )
            if changed:
                await EventRepository(session).append(
                    JobFailed(
                        job_id=job_id,
                        kind=kind.value,
                        status=JobStatus.FAILED.value,
                        error=error,
                        attempts=attempts,
                    ),
                    symbol=symbol,
                )

    await until_stored(write, what=f"the outcome of job {job_id}")
