"""The API's client of APScheduler's shared data store: through it jobs are added by task id
(``db.enqueue``), never run.

``web`` imports nothing from ``scheduler``: a job is a row in the data store naming a task id
(``db.kinds.JobKind``) that ``stockcast db upgrade`` configured; whichever scheduler node is free
picks it up. APScheduler's ``add_job`` would quietly create a task without a function for an
unknown id (``db.apscheduler_workarounds``, item 8), so the queue checks that the task exists
first and refuses (503) otherwise.

The scheduler client is opened by a background task that owns it for the life of the process:
opening it needs a migrated, reachable database (the data store creates its tables otherwise), and
the API must start - and answer ``/health`` and ``/ready`` - without one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from collections.abc import Iterable
from datetime import timedelta

from apscheduler import AsyncScheduler
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from db.apscheduler_workarounds import ensure_task_configured
from db.engine import first_line
from db.enqueue import JobQueueUnavailableError
from db.jobstore import create_data_store, create_event_broker
from db.kinds import JobKind
from db.revision import current_revision

logger = logging.getLogger(__name__)

_RETRY_S = 2.0


class JobQueue:
    """Adds jobs to the shared data store; see the module docstring for the life cycle."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        database_url: str,
        expected_revision: str,
        result_expiration_s: float,
        scheduler: AsyncScheduler | None = None,
        ready_timeout_s: float = 10.0,
    ) -> None:
        self._engine = engine
        self._database_url = database_url
        self._expected_revision = expected_revision
        #: How long APScheduler keeps the result of a job enqueued through this queue.
        self.result_expiration = timedelta(seconds=result_expiration_s)
        self._ready_timeout = ready_timeout_s
        self._shared = scheduler
        self._scheduler: AsyncScheduler | None = scheduler
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._known_tasks: set[str] = set()
        self._reason = "the job queue is starting"
        if scheduler is not None:
            self._ready.set()

    async def run(self) -> None:
        """Open the scheduler client once the database is at the expected revision, and hold it
        until :meth:`stop`. With a shared scheduler (all-in-one mode) there is nothing to open."""
        if self._shared is not None:
            return
        while not self._stopping.is_set():
            if not await self._database_ready():
                await self._sleep(_RETRY_S)
                continue
            try:
                async with AsyncScheduler(
                    create_data_store(self._engine),
                    create_event_broker(self._database_url),
                    identity=f"api-{platform.node()}-{os.getpid()}",
                ) as scheduler:
                    self._scheduler = scheduler
                    self._ready.set()
                    logger.info("job queue open")
                    await self._stopping.wait()
                    return
            except (SQLAlchemyError, OSError, RuntimeError) as exc:
                self._reason = f"cannot open the scheduler's data store: {first_line(exc)}"
                logger.warning("%s (will retry)", self._reason)
            finally:
                self._scheduler = None
                self._ready.clear()
            await self._sleep(_RETRY_S)

    async def stop(self) -> None:
        self._stopping.set()

    @property
    def ready(self) -> bool:
        return self._scheduler is not None

    async def scheduler_for(self, kinds: Iterable[JobKind]) -> AsyncScheduler:
        """The open scheduler client, once every task in ``kinds`` is known to be configured;
        raises (503) otherwise, before anything is written."""
        scheduler = await self._open_scheduler()
        for kind in kinds:
            await self._check_task(scheduler, kind.value)
        return scheduler

    async def _open_scheduler(self) -> AsyncScheduler:
        if self._scheduler is None:
            try:
                await asyncio.wait_for(self._ready.wait(), self._ready_timeout)
            except TimeoutError:
                raise JobQueueUnavailableError(self._reason) from None
        scheduler = self._scheduler
        if scheduler is None:
            raise JobQueueUnavailableError(self._reason)
        return scheduler

    async def _check_task(self, scheduler: AsyncScheduler, task_id: str) -> None:
        if task_id in self._known_tasks:
            return
        try:
            await ensure_task_configured(scheduler, task_id)
        except SQLAlchemyError as exc:
            raise JobQueueUnavailableError(first_line(exc)) from exc
        self._known_tasks.add(task_id)

    async def _database_ready(self) -> bool:
        try:
            revision = await current_revision(self._engine)
        except (SQLAlchemyError, OSError) as exc:
            self._reason = f"database unreachable: {first_line(exc)}"
            return False
        if revision != self._expected_revision:
            self._reason = (
                "database is not migrated; run `stockcast db upgrade`"
                if revision is None
                else f"database at revision {revision}, expected {self._expected_revision}"
            )
            return False
        return True

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return
