"""The scheduler/worker node: APScheduler 4's ``AsyncScheduler`` on the service database, with
stockcast's tasks, schedules, job recording and a graceful stop.

:class:`SchedulerDaemon` is the async entry point. ``python -m scheduler`` runs it under signal
handling (:func:`serve`); ``stockcast up`` runs it in the API's event loop and may hand it the
API's local event broker so that both see each other's events. The node refuses to start on a
database that is not migrated (schema creation belongs to ``stockcast db upgrade`` alone), and on
SQLite when another scheduler process already uses the file.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import anyio
from anyio import TASK_STATUS_IGNORED, CapacityLimiter, create_task_group, move_on_after
from anyio.abc import TaskStatus
from apscheduler import (
    AsyncScheduler,
    JobAdded,
    JobReleased,
    SchedulerRole,
    TaskDefaults,
)
from apscheduler.abc import EventBroker
from apscheduler.executors.async_ import AsyncJobExecutor
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from db.apscheduler_workarounds import (
    create_node_data_store,
    reconcile_running_jobs,
    single_scheduler_lock,
    wake_scheduler_loops,
)
from db.engine import create_async_db_engine, create_session_factory
from db.jobstore import create_event_broker
from db.kinds import JobKind
from db.repositories import HeartbeatRepository
from db.revision import current_revision
from forecasting.replay import ReplayClock
from forecasting.sources import make_source
from scheduler.config import SchedulerConfig
from scheduler.job_logs import install_job_failure_filter
from scheduler.outcomes import OutcomeRecorder
from scheduler.reconcile import reconcile_orphan_versions, record_abandoned_attempts
from scheduler.replay import build_replay, resume_point, run_replay
from scheduler.runner import JobFailedError
from scheduler.runtime import WorkerRuntime, register_runtime, unregister_runtime, wall_clock
from scheduler.schedules import register_sync_schedule, sync_schedules
from scheduler.tasks import JOB_EXECUTOR, configure_tasks

logger = logging.getLogger(__name__)


class SchemaNotReadyError(RuntimeError):
    """The database is not at the schema revision this code expects."""

    def __init__(self, found: str | None, expected: str | None) -> None:
        found_text = "not migrated" if found is None else f"at revision {found}"
        wanted = f" (expected {expected})" if expected else ""
        super().__init__(
            f"the database is {found_text}{wanted}: run `stockcast db upgrade` first, once, "
            "before starting scheduler nodes"
        )
        self.found = found
        self.expected = expected


def default_identity() -> str:
    """Host, pid and a random suffix: unique across restarts, readable in ``job_runs.worker``."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid4().hex[:6]}"


class SchedulerDaemon:
    """One node of the scheduler cluster; :meth:`run` until :meth:`request_stop`."""

    def __init__(self, config: SchedulerConfig, *, event_broker: EventBroker | None = None) -> None:
        self._config = config
        self._event_broker = event_broker
        self._identity = config.identity or default_identity()
        self._stop_requested = anyio.Event()
        self._force_requested = anyio.Event()
        self._scheduler: AsyncScheduler | None = None

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def scheduler(self) -> AsyncScheduler | None:
        """The running APScheduler instance (``None`` before start and after stop)."""
        return self._scheduler

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested.is_set()

    def request_stop(self, *, force: bool = False) -> None:
        """Stop taking jobs and shut down; ``force`` also stops waiting for running jobs."""
        self._stop_requested.set()
        if force:
            self._force_requested.set()

    async def run(self, *, task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> None:
        """Run the node; returns after a requested stop, once running jobs finished or were
        released. ``task_status.started()`` is called when the node is taking work."""
        config = self._config
        with single_scheduler_lock(config.database_url):
            pool: dict[str, int] = {}
            if not config.is_sqlite:
                pool = {"pool_size": config.max_concurrent_jobs + 4, "max_overflow": 10}
            engine = create_async_db_engine(config.database_url, **pool)
            try:
                await self._check_schema(engine)
                await self._serve(engine, task_status)
            finally:
                await engine.dispose()

    async def _check_schema(self, engine: AsyncEngine) -> None:
        found = await current_revision(engine)
        expected = self._config.expected_revision
        if found is None or (expected is not None and found != expected):
            raise SchemaNotReadyError(found, expected)

    async def _serve(self, engine: AsyncEngine, task_status: TaskStatus[None]) -> None:
        config = self._config
        broker = self._event_broker or create_event_broker(config.database_url)
        role = SchedulerRole[config.role]
        scheduler = self._new_scheduler(engine, broker, role)
        sessions = create_session_factory(engine)
        source = make_source(config.source, timeout=config.source_timeout)
        replay: ReplayClock | None = None
        if config.replay is not None:
            replay, source = await build_replay(
                source, config.replay, resume_at=await resume_point(sessions)
            )
        runtime = WorkerRuntime(
            config=config,
            identity=self._identity,
            engine=engine,
            sessions=sessions,
            scheduler=scheduler,
            source=source,
            train_limiter=CapacityLimiter(config.train_concurrency),
            clock=replay.now if replay is not None else wall_clock,
        )
        recorder = OutcomeRecorder(runtime)
        register_runtime(runtime)
        try:
            async with scheduler:
                await self._prepare(scheduler, runtime, recorder, role)
                await scheduler.start_in_background()
                self._scheduler = scheduler
                logger.info(
                    "scheduler node %s started (role %s, %d job slots, %d training slot(s), %s)",
                    self._identity,
                    config.role,
                    config.max_concurrent_jobs,
                    config.train_concurrency,
                    "SQLite, single process" if config.is_sqlite else "PostgreSQL",
                )
                async with create_task_group() as group:
                    group.start_soon(
                        wake_scheduler_loops, broker, role, config.effective_poll_interval
                    )
                    group.start_soon(self._reconcile_periodically, engine)
                    group.start_soon(self._beat_periodically, runtime)
                    if (
                        replay is not None
                        and config.replay is not None
                        and role
                        in (
                            SchedulerRole.both,
                            SchedulerRole.scheduler,
                        )
                    ):
                        group.start_soon(run_replay, runtime, replay, config.replay)
                    task_status.started()
                    await self._stop_requested.wait()
                    group.cancel_scope.cancel()
                await self._drain(scheduler, runtime)
        finally:
            self._scheduler = None
            unregister_runtime(runtime)
        logger.info("scheduler node %s stopped", self._identity)

    def _new_scheduler(
        self, engine: AsyncEngine, broker: EventBroker, role: SchedulerRole
    ) -> AsyncScheduler:
        """The node's APScheduler, on a data store that waits out database faults and takes no
        retrain job this node has no training slot for (so an idle node trains it instead)."""
        config = self._config
        node_limits = {
            JobKind.RETRAIN.value: config.train_concurrency,
            JobKind.REFRESH_BATCH.value: config.refresh_batch_concurrency,
        }
        scheduler = AsyncScheduler(
            create_node_data_store(engine, node_limits),
            broker,
            identity=self._identity,
            role=role,
            max_concurrent_jobs=config.max_concurrent_jobs,
            job_executors={JOB_EXECUTOR: AsyncJobExecutor()},
            task_defaults=TaskDefaults(job_executor=JOB_EXECUTOR, max_running_jobs=1),
            lease_duration=timedelta(seconds=config.lease_duration),
            cleanup_interval=timedelta(seconds=config.cleanup_interval),
            logger=logging.getLogger("apscheduler"),
        )
        install_job_failure_filter(logging.getLogger("apscheduler"), JobFailedError)
        return scheduler

    async def _prepare(
        self,
        scheduler: AsyncScheduler,
        runtime: WorkerRuntime,
        recorder: OutcomeRecorder,
        role: SchedulerRole,
    ) -> None:
        """Before the node takes jobs: its tasks and listeners, the schedules (a scheduling
        role), the attempts a gone node abandoned, and the registry's orphans (a worker)."""
        config = self._config
        await configure_tasks(scheduler, config.limits)
        scheduler.subscribe(recorder.on_job_released, JobReleased)
        scheduler.subscribe(recorder.on_job_added, JobAdded)
        if role in (SchedulerRole.both, SchedulerRole.scheduler):
            report = await sync_schedules(scheduler, runtime.sessions, config)
            logger.info("schedules synced with the watchlist: %s", report)
            await register_sync_schedule(scheduler, config)
        try:
            await record_abandoned_attempts(runtime.sessions, config, identity=self._identity)
        except (OperationalError, DBAPIError) as exc:
            logger.warning("abandoned jobs not recorded at start: %s", exc)
        if role is not SchedulerRole.scheduler:
            await reconcile_orphan_versions(runtime.sessions, config, identity=self._identity)

    async def _reconcile_periodically(self, engine: AsyncEngine) -> None:
        """Keep APScheduler's per-task running-job counters true (they leak when a node dies; see
        :func:`db.apscheduler_workarounds.reconcile_running_jobs`), once per clean-up interval."""
        while True:
            try:
                await reconcile_running_jobs(engine)
            except (OperationalError, DBAPIError) as exc:
                # A busy SQLite file or a dropped connection: the next round will do it.
                logger.debug("running-job counters not reconciled this round: %s", exc)
            await anyio.sleep(self._config.cleanup_interval)

    async def _beat_periodically(self, runtime: WorkerRuntime) -> None:
        """Write this node's heartbeat every ``heartbeat_interval`` seconds. A database that
        cannot be written (locked, gone) costs a beat, never the node: the health check then
        sees the beat age and says so."""
        host, pid = socket.gethostname(), os.getpid()
        while True:
            try:
                async with runtime.sessions() as session, session.begin():
                    await HeartbeatRepository(session).beat(
                        node=self._identity,
                        host=host,
                        pid=pid,
                        role=self._config.role,
                        at=datetime.now(UTC),
                    )
            except (OperationalError, DBAPIError) as exc:
                logger.warning("heartbeat not written: %s", exc)
            await anyio.sleep(self._config.heartbeat_interval)

    async def _drain(self, scheduler: AsyncScheduler, runtime: WorkerRuntime) -> None:
        """Take no new jobs, give the running ones ``shutdown_timeout`` to finish, then stop.

        Jobs still running at the deadline are cancelled and released (``cancelled``); the
        idempotent ones are queued again by :class:`OutcomeRecorder`, and a training child is
        killed, leaving the champion as it was.
        """
        scheduler.max_concurrent_jobs = 0  # the job loop acquires nothing more
        if len(runtime.in_flight):
            logger.info(
                "stopping: waiting up to %g s for %d running job(s)",
                self._config.shutdown_timeout,
                len(runtime.in_flight),
            )
            async with create_task_group() as group:

                async def stop_waiting_when_forced() -> None:
                    await self._force_requested.wait()
                    group.cancel_scope.cancel()

                group.start_soon(stop_waiting_when_forced)
                with move_on_after(self._config.shutdown_timeout):
                    await runtime.in_flight.wait_idle()
                group.cancel_scope.cancel()
            if len(runtime.in_flight):
                logger.warning("stopping: cancelling %d unfinished job(s)", len(runtime.in_flight))
        await scheduler.stop()


async def serve(config: SchedulerConfig) -> None:
    """Run a node until SIGTERM or SIGINT (a second signal stops waiting for running jobs)."""
    daemon = SchedulerDaemon(config)
    async with create_task_group() as group:

        async def stop_on_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    forced = daemon.stop_requested
                    logger.info(
                        "received %s: %s",
                        signal.Signals(signum).name,
                        "stopping now" if forced else "stopping gracefully",
                    )
                    daemon.request_stop(force=forced)

        group.start_soon(stop_on_signals)
        await daemon.run()
        group.cancel_scope.cancel()
