"""Every workaround for APScheduler 4.0.0a6 (pinned exactly in ``pyproject.toml``), in one place.

Both the scheduler and the API use some of them, so they live in this leaf package. When the pin
moves, go down this checklist: re-run the test named in each item against the new release, and
remove what the release has made unnecessary.

1. **Two scheduler processes on one SQLite file run jobs twice** (agronholm/apscheduler#959;
   SQLite has no ``SELECT ... FOR UPDATE SKIP LOCKED``). :func:`single_scheduler_lock` makes a
   second process refuse to start. Remove only if a release supports several processes on SQLite
   (test: ``tests/unit/scheduler/test_scheduler_lock.py``).
2. **The schedule loop ignores schedules still held by a dead node** (#1053: the wake-up deadline
   skips every acquired schedule, even with an expired lease; fixed by PR #1129, which releases
   expired schedule leases in clean-up, unreleased at 4.0.0a6). The ``ScheduleUpdated`` nudge of
   :func:`wake_scheduler_loops`. Remove that half once a release with #1129 is pinned (test: the
   kill test in ``tests/integration/scheduler/test_scheduler_processes.py``).
3. **Workers sleep until a broker event, and on SQLite no broker reaches another process** (by
   design, not a bug: the local event broker). The ``JobAdded`` nudge of
   :func:`wake_scheduler_loops` finds jobs the API process enqueued. Keep while the API and the
   scheduler may run as separate processes on SQLite.
4. **Per-task running-job counters drift when a node dies** (#1110, open: "tasks do not run after
   terminations"; #1116/#1121: a job run twice after its lease expired is released twice).
   :func:`reconcile_running_jobs`, run every clean-up interval by the daemon. Remove when a release
   recounts the running jobs in clean-up (test: ``test_job_records.py``'s counter test and the
   kill test).
5. **Clean-up announces ``abandoned`` for a job a live node re-acquired a moment earlier** (it reads
   expired leases without locking them; no upstream issue found). :func:`job_running_elsewhere`
   keeps the outcome recorder from re-enqueuing a job that is running. Remove when clean-up locks
   the rows it releases.
6. **A schedule's fire time can be queued twice**: APScheduler adds the fired job and advances the
   schedule in two transactions, so a node killed in between leaves the fire time to the next node
   (no upstream issue found). ``job_runs`` holds one job per schedule fire time (the unique index
   ``uq_job_runs_schedule_fire``, migration 0002: it stays, it is history), and
   :func:`unless_duplicate_fire` turns the refused row into "skip this job". Harmless to keep.
7. **Nodes starting together on an empty PostgreSQL race on ``CREATE TYPE coalescepolicy``** (no
   upstream issue found). :func:`create_scheduler_tables` creates the schema once, from
   ``stockcast db upgrade``, before any node starts. Keep: it is also the right place to do it.
8. **``add_job(task_id)`` quietly creates a task without a function for an unknown id**
   (``AsyncScheduler.configure_task`` in 4.0.0a6), and the job then fails on a worker.
   :func:`ensure_task_configured` refuses first. Remove if ``add_job`` raises ``TaskLookupError``.
9. **The asyncpg event broker fails with anyio >= 4.14** (#1141, ``NoEventLoopError``).
   ``db.jobstore.create_event_broker`` uses the psycopg broker; nothing to remove, the choice can
   stay.
10. **``sniffio`` is imported but not declared, and SQLAlchemy 2.1's async engine needs
    ``greenlet``**: both are listed in ``pyproject.toml``'s dependencies. Drop ``sniffio`` when a
    release declares it.
11. **The SQLAlchemy data store retries only ``InterfaceError``/``OSError``, and nothing on SQLite**:
    a locked SQLite file (``database is locked`` after the busy timeout), a full disk or a killed
    PostgreSQL backend (``OperationalError``) raised out of ``acquire_schedules``/``release_job``
    and crashed the scheduler. ``db.jobstore.PatientDataStore`` (scheduler nodes only) retries
    every operational error, with backoff, without end. Remove if a release retries them (test:
    ``tests/integration/scheduler/test_database_outages.py``, ``tests/integration/test_up_database_faults.py``).
12. **The psycopg event broker dies with its connection** (its listening loop catches only
    ``InterfaceError``; a terminated backend raises ``psycopg.OperationalError``), and **a job
    release with a long traceback exceeds NOTIFY's 8,000 bytes** (``SerializationError`` out of the
    scheduler). ``db.jobstore.PatientPsycopgEventBroker`` reconnects with backoff and drops the
    traceback from an oversized release. Remove when a release does both (test:
    ``test_database_outages.py`` on PostgreSQL).

13. **``max_running_jobs`` is one counter for the whole cluster; nothing limits what one node
    takes** (the task row is shared; ``AsyncScheduler`` acquires up to ``max_concurrent_jobs`` of
    any task). A node with one training slot took both queued trainings while the other node sat
    idle, and the second waited for the first. :class:`NodeDataStore` leaves a task's jobs
    in the queue while this node already holds its own limit of them, and wakes the other nodes to
    take what it left. Keep: no release has a per-node limit (test:
    ``tests/integration/scheduler/test_training_slots.py``).

14. **A node's own running job is released as ``abandoned`` after a write outage longer than its
    lease** (a SQLite file on a full disk: the lease extensions fail, clean-up then finds the lease
    expired once the disk has room), and the job's own release then hits the unique
    ``job_results`` row and raised ``IntegrityError`` out of the scheduler: the node died. The
    clean-up of :class:`NodeDataStore` first renews the leases of this live node's jobs, and its
    release of a job already released records nothing twice. Remove when clean-up spares live
    nodes and releases are idempotent (test:
    ``tests/integration/scheduler/test_scheduler_full_disk.py``).

Not a workaround but a design choice of APScheduler: a job whose node died is ``abandoned``, never
retried; :class:`scheduler.outcomes.OutcomeRecorder` re-enqueues the idempotent kinds.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from logging import getLogger
from pathlib import Path
from typing import Any, Final, TypeVar, cast
from uuid import uuid4

import anyio
from apscheduler import (
    AsyncScheduler,
    Job,
    JobAdded,
    JobResult,
    SchedulerRole,
    ScheduleUpdated,
    TaskLookupError,
)
from apscheduler.abc import EventBroker
from apscheduler.eventbrokers.local import LocalEventBroker
from apscheduler.serializers.json import JSONSerializer
from sqlalchemy import Connection, Select, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from db.jobstore import PATIENT_RETRY, PatientDataStore, create_data_store
from db.models import JobRun, JobStatus
from db.repositories import JobRepository

logger = getLogger(__name__)

T = TypeVar("T")

# --------------------------------------------------------------------------- 1. SQLite: one process

LOCK_SUFFIX: Final = ".scheduler.lock"


class SchedulerAlreadyRunningError(RuntimeError):
    """Another scheduler process holds the SQLite database's scheduler lock."""

    def __init__(self, database: Path, lock_path: Path, holder: str) -> None:
        who = f" (pid {holder})" if holder else ""
        super().__init__(
            f"another scheduler process{who} already runs on the SQLite database {database} "
            f"(lock {lock_path}); SQLite supports one scheduler process: stop the other one, "
            "or use PostgreSQL to run several"
        )
        self.database = database
        self.lock_path = lock_path


def lock_path_for(database_url: str) -> Path | None:
    """The lock file of a SQLite database URL; ``None`` for databases that need no lock."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    database = Path(url.database).expanduser().resolve()
    return database.with_name(database.name + LOCK_SUFFIX)


@contextmanager
def single_scheduler_lock(database_url: str) -> Iterator[Path | None]:
    """Hold the database's scheduler lock for the duration of the block (no-op on PostgreSQL).

    ``flock`` locks die with their process, so a killed scheduler never leaves a stale lock.
    """
    path = lock_path_for(database_url)
    if path is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()
            database = path.with_name(path.name.removesuffix(LOCK_SUFFIX))
            raise SchedulerAlreadyRunningError(database, path, holder) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield path
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


# --------------------------------------------------------------------------- 2, 3. wake-ups

#: Task (and schedule) id of the synthetic events that wake APScheduler's loops.
POLL_TASK_ID: Final = "stockcast.poll"


async def wake_scheduler_loops(broker: EventBroker, role: SchedulerRole, interval: float) -> None:
    """Wake APScheduler's loops every ``interval`` seconds with synthetic local events, forever.

    Its loops sleep until a broker event arrives: jobs another process enqueued on SQLite send
    none this process can hear (item 3), and the schedule loop skips schedules still marked as
    held by a dead node (item 2), so without a nudge a survivor may never take them over.
    """
    while True:
        await anyio.sleep(interval)
        if role is not SchedulerRole.scheduler:
            await broker.publish_local(
                JobAdded(job_id=uuid4(), task_id=POLL_TASK_ID, schedule_id=None)
            )
        if role is not SchedulerRole.worker:
            await broker.publish_local(
                ScheduleUpdated(
                    schedule_id=POLL_TASK_ID,
                    task_id=POLL_TASK_ID,
                    next_fire_time=datetime.now(UTC),
                )
            )


# --------------------------------------------------------------------------- 4. counters


async def reconcile_running_jobs(engine: AsyncEngine) -> dict[str, int]:
    """Reset each task's running-job counter to the number of jobs a node actually holds.

    APScheduler counts running jobs per task to enforce ``max_running_jobs``, but the counter
    drifts when a node dies: a job whose lease expired is handed to another node and counted
    again, and the first count is never given back. A task limited to one job at a time would then
    never run again. Every held job is eventually released (the counter goes down) or handed over
    (it is still one held job), so the true value is the number of jobs with an owner. The task
    rows are locked first, so no acquisition or release of their jobs interleaves. Returns the
    corrected counters of the tasks that were off.
    """
    tables = create_data_store(engine).get_table_definitions().tables
    tasks, jobs = tables["tasks"], tables["jobs"]
    held_query = (
        select(jobs.c.task_id, func.count())
        .where(jobs.c.acquired_by.is_not(None))
        .group_by(jobs.c.task_id)
    )
    async with engine.connect() as connection:
        # A cheap look first: the locking pass holds up acquisitions, so only drift pays for it.
        counters = (await connection.execute(select(tasks.c.id, tasks.c.running_jobs))).all()
        held: dict[str, int] = dict((await connection.execute(held_query)).all())
    if all(running == held.get(task_id, 0) for task_id, running in counters):
        return {}
    fixed: dict[str, int] = {}
    async with engine.begin() as connection:
        counters = (
            await connection.execute(select(tasks.c.id, tasks.c.running_jobs).with_for_update())
        ).all()
        held = dict((await connection.execute(held_query)).all())
        for task_id, running in counters:
            actual = int(held.get(task_id, 0))
            if running != actual:
                await connection.execute(
                    update(tasks).where(tasks.c.id == task_id).values(running_jobs=actual)
                )
                fixed[task_id] = actual
    if fixed:
        logger.warning("corrected running-job counters of APScheduler tasks: %s", fixed)
    return fixed


# --------------------------------------------------------------------------- 5. false abandons


async def job_running_elsewhere(jobs: JobRepository, job_id: str, dead_node: str) -> bool:
    """Whether another node already took over a job announced as abandoned by ``dead_node``.

    That node is running it and will record how it ends; treating the job as abandoned would run
    it a second time.
    """
    row: JobRun = await jobs.get(job_id, refresh=True)
    return row.status is JobStatus.RUNNING and row.worker not in (None, dead_node)


# --------------------------------------------------------------------------- 6. duplicate fires


async def unless_duplicate_fire(
    sessions: async_sessionmaker[AsyncSession],
    schedule_id: str | None,
    record: Callable[[AsyncSession], Awaitable[T]],
) -> T | None:
    """Run ``record`` (which writes the job's ``job_runs`` row) in a transaction; ``None`` when
    the row was refused as a second job for a schedule fire time that already has one."""
    try:
        async with sessions.begin() as session:
            return await record(session)
    except IntegrityError:
        if schedule_id is None:
            raise  # not a schedule's job: some other constraint, a real error
        return None


# --------------------------------------------------------------------------- 7. schema creation


async def create_scheduler_tables(engine: AsyncEngine) -> None:
    """Create APScheduler's tables once, from one process (``stockcast db upgrade``).

    Starting the data store creates its schema; doing it here, before any node starts, avoids the
    race of two nodes running ``CREATE TYPE`` on an empty PostgreSQL database.
    """
    store = create_data_store(engine)
    broker = LocalEventBroker()
    async with AsyncExitStack() as stack:
        await broker.start(stack, logger)
        await store.start(stack, broker, logger)


# --------------------------------------------------------------------------- 8. unknown tasks


class TaskNotConfiguredError(RuntimeError):
    """The task a job would run is not configured in the data store: migrations were not run."""

    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"task {task_id!r} is not configured in the scheduler's data store; run "
            "`stockcast db upgrade`"
        )
        self.task_id = task_id


async def ensure_task_configured(scheduler: AsyncScheduler, task_id: str) -> None:
    """Raise :class:`TaskNotConfiguredError` unless ``task_id`` exists in the data store."""
    try:
        await scheduler.data_store.get_task(task_id)
    except TaskLookupError:
        raise TaskNotConfiguredError(task_id) from None


# --------------------------------------------------------------------------- 13. per-node limits


@dataclass
class _Acquisition:
    """One ``acquire_jobs`` call of this node: who acquires, and how many jobs it left queued
    only because this node had no slot for them."""

    scheduler_id: str
    held_back: int = 0


#: The acquisition the current task is in (``_execute`` runs in the task that called
#: ``acquire_jobs``; a job's release, running at the same time in another task, is not in one).
_ACQUISITION: ContextVar[_Acquisition | None] = ContextVar("node_acquisition", default=None)


class NodeDataStore(PatientDataStore):
    """A scheduler node's store: patient (:class:`db.jobstore.PatientDataStore`), and taking no
    more jobs of a task in ``node_limits`` (task id -> jobs) than this node may run at once.

    The node's count is its own jobs of the task still in APScheduler's ``jobs`` table (acquired,
    not yet released), read in the acquiring transaction itself: a job taken but not yet started
    counts, a finished, failed or cancelled one frees its slot when it is released. The task is
    left out of the query while the node is full, and the rows past its free slots are dropped
    before the store marks them acquired, so another node takes them; it is woken for that, since
    idle nodes sleep until an event. Nothing new is stored: the claim is APScheduler's own job
    lease, so a killed node blocks nobody longer than ``lease_duration``, after which any node
    takes its jobs over like any other job of a dead node.
    """

    def __init__(self, *args: Any, node_limits: Mapping[str, int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.node_limits = dict(node_limits)
        #: This node's identity and lease, known from its first acquisition (item 14).
        self._holder: tuple[str, timedelta] | None = None

    async def cleanup(self) -> None:
        """APScheduler's clean-up, after renewing the leases of this node's own jobs: the node
        is alive (it runs this), so a lease that lapsed while the database could not be written
        does not make its running job ``abandoned`` (item 14)."""
        if self._holder is not None:
            await self._renew_own_leases(*self._holder)
        await super().cleanup()

    async def release_job(self, scheduler_id: str, job: Job, result: JobResult) -> None:
        """Release ``job``; one already released (as abandoned, by a clean-up that ran first) is
        left as that release recorded it, instead of crashing the scheduler (item 14)."""
        try:
            await super().release_job(scheduler_id, job, result)
        except IntegrityError:
            if await self.get_job_result(job.id) is None:
                raise
            logger.warning(
                "job %s was released already (its lease ran out while the database could not be "
                "written); its %s outcome is in job_runs only",
                job.id,
                result.outcome.name,
            )

    async def _renew_own_leases(self, node: str, lease: timedelta) -> None:
        jobs = self._t_jobs
        async for attempt in self._retry():
            with attempt:
                async with self._begin_transaction() as conn:
                    now = datetime.now(UTC)
                    renew = (
                        jobs.update()
                        .where(jobs.c.acquired_by == node, jobs.c.acquired_until < now)
                        .values(acquired_until=now + lease)
                    )
                    await super()._execute(conn, renew)

    async def acquire_jobs(
        self, scheduler_id: str, lease_duration: timedelta, limit: int | None = None
    ) -> list[Job]:
        self._holder = (scheduler_id, lease_duration)
        acquisition = _Acquisition(scheduler_id)
        token = _ACQUISITION.set(acquisition)
        try:
            jobs = await super().acquire_jobs(scheduler_id, lease_duration, limit)
        finally:
            _ACQUISITION.reset(token)
        if acquisition.held_back:
            # After the commit, so that the rows are no longer locked when the others look.
            await self._event_broker.publish(
                JobAdded(job_id=uuid4(), task_id=POLL_TASK_ID, schedule_id=None)
            )
        return jobs

    async def _execute(
        self,
        conn: Connection | AsyncConnection,
        statement: Executable,
        parameters: Sequence[Any] | Mapping[str, Any] | None = None,
    ) -> Any:
        acquisition = _ACQUISITION.get()
        if acquisition is None or not self._is_acquiring_query(statement):
            return await super()._execute(conn, statement, parameters)
        free = await self._free_slots(conn, acquisition.scheduler_id)
        full = [task_id for task_id, slots in free.items() if slots <= 0]
        if full:
            statement = cast("Select[Any]", statement).where(self._t_jobs.c.task_id.not_in(full))
        rows = list(await super()._execute(conn, statement, parameters))
        acquisition.held_back = 0  # a retried transaction starts over
        cluster_free: dict[str, float] = {}
        kept = []
        for row in rows:
            if row.task_id in free:
                # What the cluster-wide limit still allows (the store skips the rest itself).
                if row.task_id not in cluster_free:
                    limit = row.max_running_jobs
                    cluster_free[row.task_id] = (
                        float("inf") if limit is None else limit - row.running_jobs
                    )
                if cluster_free[row.task_id] <= 0:
                    continue  # the task's release wakes every node: nobody to wake now
                if free[row.task_id] <= 0:
                    acquisition.held_back += 1
                    continue
                free[row.task_id] -= 1
                cluster_free[row.task_id] -= 1
            kept.append(row)
        return kept

    def _is_acquiring_query(self, statement: Executable) -> bool:
        """The ``SELECT ... FOR UPDATE`` of ``acquire_jobs``: jobs joined with their task's
        limits (none of its other statements reads ``max_running_jobs``)."""
        return isinstance(statement, Select) and statement.selected_columns.contains_column(
            self._t_tasks.c.max_running_jobs
        )

    async def _free_slots(self, conn: Connection | AsyncConnection, node: str) -> dict[str, int]:
        jobs = self._t_jobs
        query = (
            select(jobs.c.task_id, func.count())
            .where(jobs.c.acquired_by == node, jobs.c.task_id.in_(list(self.node_limits)))
            .group_by(jobs.c.task_id)
        )
        held = dict((await super()._execute(conn, query)).all())
        return {task: limit - int(held.get(task, 0)) for task, limit in self.node_limits.items()}


def create_node_data_store(engine: AsyncEngine, node_limits: Mapping[str, int]) -> NodeDataStore:
    """A scheduler node's data store: patient, and limited per node (see
    :class:`NodeDataStore`)."""
    return NodeDataStore(
        engine, serializer=JSONSerializer(), retry_settings=PATIENT_RETRY, node_limits=node_limits
    )
