"""APScheduler 4's data store and event broker on the service database.

Both the scheduler (which runs jobs) and the API (which only enqueues them) open the same store, so
the factories live here, in the leaf package they both may import.

Choices, each deliberate:
- The data store serialises with JSON, not APScheduler's default pickle: job arguments written by
  one process are read by another, and nothing read from the database is ever unpickled.
- PostgreSQL gets the psycopg event broker (the asyncpg one fails with anyio >= 4.14, apscheduler
  issue 1141); SQLite gets the local broker, which only reaches the current process: SQLite serves
  one scheduler process only (two duplicate jobs, apscheduler issue 959).

The workarounds for APScheduler 4.0.0a6's bugs are in :mod:`db.apscheduler_workarounds`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, cast

import anyio
import attrs
import psycopg
import tenacity
from anyio import TASK_STATUS_IGNORED
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream
from apscheduler import Event, JobReleased, RetrySettings, SerializationError
from apscheduler.abc import EventBroker
from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
from apscheduler.eventbrokers.local import LocalEventBroker
from apscheduler.eventbrokers.psycopg import PsycopgEventBroker
from apscheduler.serializers.json import JSONSerializer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from tenacity import stop_never, wait_exponential

#: How a scheduler node's data store waits between tries while the database cannot be written.
PATIENT_RETRY: Final = RetrySettings(stop=stop_never, wait=wait_exponential(min=0.5, max=10))


class PatientDataStore(SQLAlchemyDataStore):
    """A data store that waits out a database it cannot use, instead of crashing its scheduler.

    APScheduler 4.0.0a6 retries only ``InterfaceError``/``OSError``, and on SQLite nothing at
    all: a SQLite file locked for 45 s (``database is locked``), a full disk, or a PostgreSQL
    backend killed under it (``OperationalError``) made ``acquire_schedules``/``release_job``
    raise, the scheduler crash and ``stockcast up`` exit. Here every operational error is retried
    (each try is a new transaction, so nothing half-done is kept) with ``retry_settings``: a
    scheduler node backs off and resumes, for as long as the database stays away.
    """

    def _retry(self) -> tenacity.AsyncRetrying:
        def after_attempt(retry_state: tenacity.RetryCallState) -> None:
            outcome = retry_state.outcome
            self._logger.warning(
                "data store unavailable (try %d), backing off: %s",
                retry_state.attempt_number,
                outcome.exception() if outcome else None,
            )

        return tenacity.AsyncRetrying(
            stop=self.retry_settings.stop,
            wait=self.retry_settings.wait,
            retry=tenacity.retry_if_exception_type((OperationalError, InterfaceError, OSError)),
            after=after_attempt,
            sleep=anyio.sleep,
            reraise=True,
        )


def create_data_store(engine: AsyncEngine, *, patient: bool = False) -> SQLAlchemyDataStore:
    """APScheduler's data store on ``engine`` (the service's own async engine).

    ``patient``: a scheduler node's store, which retries while the database cannot be used (see
    :class:`PatientDataStore`). The API's store is not: a request should get its 503 at once,
    not wait for the database.
    """
    if patient:
        return PatientDataStore(engine, serializer=JSONSerializer(), retry_settings=PATIENT_RETRY)
    return SQLAlchemyDataStore(engine, serializer=JSONSerializer())


class _OnceStarted:
    """A task status that passes on only the first ``started()``: a loop restarted after a
    dropped connection must not report its start again."""

    def __init__(self, task_status: TaskStatus[None]) -> None:
        self._task_status = task_status
        self._started = False

    def started(self, value: None = None) -> None:
        if not self._started:
            self._started = True
            self._task_status.started(value)


class _KeptOpen:
    """The broker's outgoing queue as its publishing loop sees it: the loop's ``with`` does not
    close it, so a restarted loop goes on with the same queue."""

    def __init__(self, inner: MemoryObjectReceiveStream[str]) -> None:
        self._inner = inner

    def __enter__(self) -> _KeptOpen:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    async def receive(self) -> str:
        return await self._inner.receive()


#: Characters of an exception message a cross-node job release keeps, when it must be shortened.
_MAX_NOTIFIED_MESSAGE: Final = 2000


class PatientPsycopgEventBroker(PsycopgEventBroker):
    """The psycopg broker, reconnecting when PostgreSQL drops its connections.

    APScheduler 4.0.0a6's listening loop survives only ``InterfaceError``: a backend killed
    (``pg_terminate_backend``, a server restart) raised ``psycopg.OperationalError`` out of the
    broker and took the scheduler, or the API's client of it, down. Here both loops reconnect,
    with backoff, for as long as the server is away. (Not through the broker's own retry, whose
    ``_connect`` yields inside its retry loop and cannot retry a failure of its body.)
    """

    async def _listen_notifications(
        self, *, task_status: TaskStatus[None] = TASK_STATUS_IGNORED
    ) -> None:
        once = _OnceStarted(task_status)
        await self._reconnecting(
            "listen",
            lambda: super(PatientPsycopgEventBroker, self)._listen_notifications(
                task_status=cast("TaskStatus[None]", once)
            ),
        )

    async def _publish_notifications(
        self,
        receive: MemoryObjectReceiveStream[str],
        *,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
    ) -> None:
        once = _OnceStarted(task_status)
        kept = cast("MemoryObjectReceiveStream[str]", _KeptOpen(receive))
        with receive:
            await self._reconnecting(
                "publish",
                lambda: super(PatientPsycopgEventBroker, self)._publish_notifications(
                    kept, task_status=cast("TaskStatus[None]", once)
                ),
            )

    async def publish(self, event: Event) -> None:
        """Publish ``event``; a job's release whose traceback makes it too big for a PostgreSQL
        notification (8,000 bytes) goes without the traceback (a job failing with a long one
        raised ``SerializationError`` out of the scheduler) and, if need be, a shortened
        message. The node that ran the job logged the traceback already."""
        try:
            await super().publish(event)
        except SerializationError:
            if not isinstance(event, JobReleased):
                raise
            message = event.exception_message
            if message is not None and len(message) > _MAX_NOTIFIED_MESSAGE:
                message = message[:_MAX_NOTIFIED_MESSAGE] + "..."
            await super().publish(
                attrs.evolve(event, exception_traceback=None, exception_message=message)
            )

    async def _reconnecting(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        failures = 0
        while True:
            try:
                await loop()
                return  # the loop ended on its own (its queue closed): the broker is stopping
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                failures += 1
                delay = min(10.0, 0.5 * 2 ** min(failures, 5))
                self._logger.warning(
                    "event broker %s connection lost (%s); reconnecting in %.1f s", name, exc, delay
                )
                await anyio.sleep(delay)


def create_event_broker(database_url: str) -> EventBroker:
    """The broker that carries APScheduler events between the processes sharing the database."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PatientPsycopgEventBroker(conninfo, retry_settings=PATIENT_RETRY)
    return LocalEventBroker()
