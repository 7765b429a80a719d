"""The APScheduler tasks (ids = ``db.kinds.JobKind`` values) and their configuration.

Each task is a thin, module-level async function (APScheduler stores it by reference) whose
keyword arguments are the job's (``db.contracts``: what the API and the scheduler enqueue) and
which hands its body to :func:`scheduler.runner.run_job`. All run on the ``async`` executor on
purpose: their database I/O is async, and the CPU work inside them is sent to a thread (fetching,
forecasting) or a child process (training) by the body itself, so the event loop that renews job
leases never blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Final

from apscheduler import AsyncScheduler
from apscheduler.eventbrokers.local import LocalEventBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from db.contracts import SyncResult, SyncSchedulesArguments
from db.jobstore import create_data_store
from db.kinds import JobKind
from scheduler.config import TaskLimits
from scheduler.evaluate_job import evaluate_symbol
from scheduler.forecast_job import forecast_symbol
from scheduler.global_retrain import retrain_global as train_global
from scheduler.ingest import ingest_prices
from scheduler.refresh import plan_refresh
from scheduler.refresh import refresh_batch as refresh_symbols
from scheduler.retrain import retrain_symbol
from scheduler.runner import JobContext, run_job
from scheduler.schedules import sync_schedules as sync_watchlist_schedules

#: Every task runs on the event loop; see the module docstring for why that is safe here.
JOB_EXECUTOR: Final = "async"


async def ingest(symbol: str) -> dict[str, Any]:
    """Fetch and store the symbol's new daily bars, then queue its forecast and evaluation."""
    return await run_job(JobKind.INGEST, {"symbol": symbol}, ingest_prices)


async def forecast(symbol: str) -> dict[str, Any]:
    """Store a fresh forecast from the symbol's champion (or the naive baseline)."""
    return await run_job(JobKind.FORECAST, {"symbol": symbol}, forecast_symbol)


async def evaluate(symbol: str) -> dict[str, Any]:
    """Fill in the actual closes of the symbol's matured forecasts."""
    return await run_job(JobKind.EVALUATE, {"symbol": symbol}, evaluate_symbol)


async def retrain(symbol: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train a challenger, judge it with the promotion gate and record it."""
    return await run_job(
        JobKind.RETRAIN, {"symbol": symbol, "params": params or {}}, retrain_symbol
    )


async def retrain_global(params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train the global LSTM for the whole watchlist and every symbol's challenger beside it."""
    return await run_job(JobKind.RETRAIN_GLOBAL, {"params": params or {}}, train_global)


async def refresh(exchange: str, symbols: list[str] | None = None) -> dict[str, Any]:
    """After ``exchange``'s close: split its due symbols (or ``symbols``, just registered) into
    batch jobs."""
    return await run_job(JobKind.REFRESH, {"exchange": exchange, "symbols": symbols}, plan_refresh)


async def refresh_batch(exchange: str, session: str, symbols: list[str]) -> dict[str, Any]:
    """Fetch, store, forecast and evaluate one batch of an exchange's symbols."""
    return await run_job(
        JobKind.REFRESH_BATCH,
        {"exchange": exchange, "session": session, "symbols": symbols},
        refresh_symbols,
    )


async def _sync_body(context: JobContext[SyncSchedulesArguments]) -> SyncResult:
    runtime = context.runtime
    return await sync_watchlist_schedules(runtime.scheduler, runtime.sessions, runtime.config)


async def sync_schedules() -> dict[str, Any]:
    """Make the per-symbol schedules match the watchlist (enqueued by the API on every change)."""
    return await run_job(JobKind.SYNC_SCHEDULES, {}, _sync_body)


TASK_FUNCTIONS: Final[dict[JobKind, Callable[..., Coroutine[Any, Any, dict[str, Any]]]]] = {
    JobKind.INGEST: ingest,
    JobKind.FORECAST: forecast,
    JobKind.EVALUATE: evaluate,
    JobKind.RETRAIN: retrain,
    JobKind.SYNC_SCHEDULES: sync_schedules,
    JobKind.RETRAIN_GLOBAL: retrain_global,
    JobKind.REFRESH: refresh,
    JobKind.REFRESH_BATCH: refresh_batch,
}


async def configure_tasks(scheduler: AsyncScheduler, limits: TaskLimits) -> None:
    """Create or update every task in the data store with its function and limits.

    ``max_running_jobs`` is APScheduler's cluster-wide limit per task (default 1, which would
    run one symbol at a time across all workers); the executor is chosen explicitly because the
    default would be whichever executor happens to be first.
    """
    for kind, function in TASK_FUNCTIONS.items():
        await scheduler.configure_task(
            kind.value,
            func=function,
            job_executor=JOB_EXECUTOR,
            max_running_jobs=getattr(limits, kind.value),
            misfire_grace_time=None,
        )


async def register_tasks(engine: AsyncEngine, limits: TaskLimits | None = None) -> None:
    """Configure every task in the data store on ``engine`` without starting a scheduler.

    ``stockcast db upgrade`` calls this so the API can enqueue jobs by task id before any worker
    has ever started.
    """
    scheduler = AsyncScheduler(create_data_store(engine), LocalEventBroker())
    async with scheduler:
        await configure_tasks(scheduler, limits or TaskLimits())
