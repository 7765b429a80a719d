"""Fixtures for running real scheduler nodes against a real database and a CSV price source."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from apscheduler import AsyncScheduler
from apscheduler.eventbrokers.local import LocalEventBroker
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.contracts import JobRequest, SymbolAdded, decode_arguments
from db.engine import create_async_db_engine, create_session_factory
from db.enqueue import enqueue_jobs
from db.jobstore import create_data_store, create_event_broker
from db.kinds import JobKind
from db.models import Event, JobRun
from db.repositories import EventRepository, JobRepository, SymbolRepository
from forecasting.calendar import DEFAULT_EXCHANGE
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.promotion import PromotionPolicy
from scheduler.config import RetryPolicy, SchedulerConfig, TrainingDefaults
from scheduler.daemon import SchedulerDaemon

#: Rows of real prices each test symbol gets: enough for a tiny model, quick to ingest.
ROWS = 300
HORIZON = 3
LOOKBACK = 10

TINY_TRAINING = TrainingDefaults(
    model=ModelConfig(horizon=HORIZON, lookback=LOOKBACK, hidden_size=8, num_layers=1),
    train=TrainConfig(epochs=2, batch_size=64, max_history=ROWS, accelerator="cpu", num_threads=1),
    backtest=BacktestConfig(folds=1, test_size=20),
    initial_epochs=1,
    initial_folds=1,
    policy=PromotionPolicy.ALWAYS,
    tracking_uri=None,
)


def copy_prices(
    source_dir: Path, target_dir: Path, symbol: str, *, rows: int = ROWS, hold_back: int = 0
) -> Path:
    """Bars of one of the shared CSV files: the last ``rows`` of them, without the newest
    ``hold_back`` (a test appends those later, as new sessions arriving)."""
    target_dir.mkdir(parents=True, exist_ok=True)
    lines = (source_dir / f"{symbol}.csv").read_text(encoding="utf-8").splitlines()
    body = lines[1:][-rows:]
    if hold_back:
        body = body[:-hold_back]
    path = target_dir / f"{symbol}.csv"
    path.write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def prices_dir(tmp_path: Path, shared_prices_dir: Path) -> Path:
    directory = tmp_path / "prices"
    copy_prices(shared_prices_dir, directory, "DIS")
    return directory


class SchedulerHarness:
    """A real database, a CSV source and helpers to run nodes and act like the API process."""

    rows = ROWS
    horizon = HORIZON
    lookback = LOOKBACK

    def __init__(
        self,
        *,
        database_url: str,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        prices_dir: Path,
        shared_prices_dir: Path,
    ) -> None:
        self.shared_prices_dir = shared_prices_dir
        self.database_url = database_url
        self.engine = engine
        self.sessions = sessions
        self.prices_dir = prices_dir

    def write_prices(self, symbol: str, *, rows: int = ROWS, hold_back: int = 0) -> Path:
        return copy_prices(
            self.shared_prices_dir, self.prices_dir, symbol, rows=rows, hold_back=hold_back
        )

    async def idle(self) -> bool:
        """No job queued or running (in ``job_runs``)."""
        async with self.sessions() as session:
            counts = await JobRepository(session).count_by_status()
        return not counts.get("queued") and not counts.get("running")

    def config(self, **overrides: Any) -> SchedulerConfig:
        values: dict[str, Any] = {
            "database_url": self.database_url,
            "source": f"csv:{self.prices_dir}",
            "poll_interval": 0.2,
            "lease_duration": 10.0,
            "cleanup_interval": 2.0,
            "shutdown_timeout": 20.0,
            "retry": RetryPolicy(max_attempts=3, initial_delay=0.05, multiplier=2.0, max_delay=0.2),
            "training": TINY_TRAINING,
        }
        values.update(overrides)
        return SchedulerConfig(**values)

    @asynccontextmanager
    async def node(self, config: SchedulerConfig | None = None) -> AsyncIterator[SchedulerDaemon]:
        """A scheduler node running in this event loop until the block ends (then stopped)."""
        daemon = SchedulerDaemon(config or self.config())
        async with anyio.create_task_group() as group:
            await group.start(daemon.run)
            try:
                yield daemon
            finally:
                daemon.request_stop()

    @asynccontextmanager
    async def client(self) -> AsyncIterator[AsyncScheduler]:
        """What the API process holds: an APScheduler client, entered but never started (on
        SQLite with a broker of its own, as a separate process would have)."""
        broker = create_event_broker(self.database_url)
        if isinstance(broker, LocalEventBroker):
            broker = LocalEventBroker()
        async with AsyncScheduler(create_data_store(self.engine), broker) as client:
            yield client

    async def enqueue(
        self,
        client: AsyncScheduler,
        kind: JobKind,
        kwargs: dict[str, Any],
        *,
        symbol: str | None,
    ) -> str:
        """Enqueue as the API does (``db.enqueue``), with ``kwargs`` of the kind's shape but
        values the worker has yet to check (an invalid symbol, an out-of-range epoch count)."""
        request = JobRequest(kind=kind, symbol=symbol, arguments=decode_arguments(kind, kwargs))
        [job_id] = await enqueue_jobs(
            client, self.sessions, [request], result_expiration=timedelta(minutes=5)
        )
        return job_id

    async def watch(self, client: AsyncScheduler, symbol: str) -> None:
        """``POST /symbols`` as the API does it: the row and its event, then the schedule sync,
        the backfill and the first training, all queued at once."""
        async with self.sessions.begin() as session:
            await SymbolRepository(session).add(
                symbol=symbol, exchange=DEFAULT_EXCHANGE, horizon=HORIZON, lookback=LOOKBACK
            )
            await EventRepository(session).append(
                SymbolAdded(horizon=HORIZON, lookback=LOOKBACK, retrain_cadence="weekly"),
                symbol=symbol,
            )
        await self.enqueue(client, JobKind.SYNC_SCHEDULES, {}, symbol=None)
        await self.enqueue(client, JobKind.INGEST, {"symbol": symbol}, symbol=symbol)
        await self.enqueue(
            client,
            JobKind.RETRAIN,
            {"symbol": symbol, "params": {"initial": True}},
            symbol=symbol,
        )

    @staticmethod
    async def wait_for(
        condition: Callable[[], Awaitable[bool]], *, within: float, what: str
    ) -> None:
        """Poll ``condition`` (a database query) until it holds; fail after ``within`` s."""
        deadline = anyio.current_time() + within
        while True:
            if await condition():
                return
            if anyio.current_time() > deadline:
                raise AssertionError(f"timed out after {within:g} s waiting for {what}")
            await anyio.sleep(0.2)

    async def jobs(self) -> list[JobRun]:
        async with self.sessions() as session:
            query = select(JobRun).order_by(JobRun.created_at)
            return list((await session.execute(query)).scalars())

    async def events(self) -> list[Event]:
        async with self.sessions() as session:
            return list((await session.execute(select(Event).order_by(Event.id))).scalars())


@pytest.fixture
def harness(
    database_url: str,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    prices_dir: Path,
    shared_prices_dir: Path,
) -> SchedulerHarness:
    return SchedulerHarness(
        database_url=database_url,
        engine=engine,
        sessions=sessions,
        prices_dir=prices_dir,
        shared_prices_dir=shared_prices_dir,
    )


@pytest.fixture
async def sqlite_harness(
    tmp_path: Path, sqlite_template: Path, prices_dir: Path, shared_prices_dir: Path
) -> AsyncIterator[SchedulerHarness]:
    """A harness on SQLite only, for what is about processes and signals, not the backend."""
    database = tmp_path / "single.db"
    shutil.copyfile(sqlite_template, database)
    url = f"sqlite:///{database}"
    engine = create_async_db_engine(url)
    try:
        yield SchedulerHarness(
            database_url=url,
            engine=engine,
            sessions=create_session_factory(engine),
            prices_dir=prices_dir,
            shared_prices_dir=shared_prices_dir,
        )
    finally:
        await engine.dispose()
