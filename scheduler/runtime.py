"""The resources a running worker lends its jobs: database sessions, the price source, the
training limiter and the scheduler itself (to enqueue follow-up jobs).

Task functions are module-level (APScheduler stores them by reference, ``scheduler.tasks:ingest``)
so they cannot close over a runtime; they look theirs up through the scheduler that runs them
(APScheduler's ``current_async_scheduler`` context variable), never through a global.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import anyio
from apscheduler import AsyncScheduler, current_async_scheduler
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from scheduler.config import SchedulerConfig

if TYPE_CHECKING:
    from anyio import CapacityLimiter

    from forecasting.sources import PriceSource


class NoRuntimeError(RuntimeError):
    """A task function was called outside a scheduler started by :mod:`scheduler.daemon`."""

    def __init__(self) -> None:
        super().__init__(
            "stockcast tasks run only inside a scheduler started by scheduler.daemon "
            "(no worker runtime is registered for the current scheduler)"
        )


class InFlightJobs:
    """The jobs this worker is running, so a graceful stop can wait for them to finish."""

    def __init__(self) -> None:
        self._jobs: set[str] = set()
        self._idle = anyio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._jobs)

    @contextmanager
    def track(self, job_id: str) -> Iterator[None]:
        if not self._jobs:
            self._idle = anyio.Event()
        self._jobs.add(job_id)
        try:
            yield
        finally:
            self._jobs.discard(job_id)
            if not self._jobs:
                self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()


def one_at_a_time() -> CapacityLimiter:
    """A limiter of one token (a fresh one per worker runtime)."""
    return anyio.CapacityLimiter(1)


def wall_clock() -> datetime:
    """The real "now", aware UTC: the clock of every run that is not a replay."""
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True, eq=False)
class WorkerRuntime:
    """One worker's shared resources; created by the daemon, used by every job it runs."""

    config: SchedulerConfig
    identity: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    scheduler: AsyncScheduler
    source: PriceSource
    train_limiter: CapacityLimiter
    #: The node's CPU-bound work in threads (a refresh batch's forecasts, a local source's
    #: parsing) runs one piece at a time. Threads of one process share the GIL: with four
    #: batches computing at once, one worker burned 51-57 CPU-s on a 1,000-symbol steady-state
    #: refresh against 43-48 with this slot (bench/refresh.py). Their database waits still
    #: overlap: a node runs as many batches as its setting allows, and only their computing
    #: takes turns.
    compute_limiter: CapacityLimiter = field(default_factory=one_at_a_time)
    in_flight: InFlightJobs = field(default_factory=InFlightJobs)
    #: "Now" for the jobs' clock-driven choices (the last closed session): the wall clock, or
    #: the simulated one of a market replay (:mod:`scheduler.replay`).
    clock: Callable[[], datetime] = field(default=wall_clock)


_RUNTIMES: WeakKeyDictionary[AsyncScheduler, WorkerRuntime] = WeakKeyDictionary()


def register_runtime(runtime: WorkerRuntime) -> None:
    _RUNTIMES[runtime.scheduler] = runtime


def unregister_runtime(runtime: WorkerRuntime) -> None:
    _RUNTIMES.pop(runtime.scheduler, None)


def current_runtime() -> WorkerRuntime:
    """The runtime of the scheduler running the current job."""
    scheduler = current_async_scheduler.get(None)
    runtime = _RUNTIMES.get(scheduler) if scheduler is not None else None
    if runtime is None:
        raise NoRuntimeError()
    return runtime
