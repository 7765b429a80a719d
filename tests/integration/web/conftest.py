"""Fixtures for the API tests: a migrated database (``upgrade_database`` also configures the
scheduler's tasks, as ``stockcast db upgrade`` does), a real Litestar test client on it, a helper
to seed and count rows, and a real tiny trained model.

The API only enqueues: a test sees the job in APScheduler's data store and in ``job_runs``. Whether
the jobs then run is the scheduler's business and its tests'.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from db.contracts import EventPayload, ForecastReady
from db.engine import create_async_db_engine, create_session_factory, create_sync_db_engine
from db.repositories import (
    BarRecord,
    EventRepository,
    ForecastRepository,
    ForecastStepRecord,
    ModelVersionRepository,
    NewModelVersion,
    PriceRepository,
    SymbolRepository,
)
from forecasting.artifacts import ModelArtifact
from forecasting.calendar import DEFAULT_EXCHANGE
from stockcast.schema import head_revision
from web.app import create_app
from web.config import WebConfig

API_KEY = "test-key-0123456789abcdef"
KEY = {"X-API-Key": API_KEY}
#: Every table a request could write to, ours and APScheduler's.
WRITABLE_TABLES = (
    "symbols",
    "price_bars",
    "model_versions",
    "model_artifacts",
    "forecasts",
    "job_runs",
    "events",
    "jobs",
    "schedules",
)

T = TypeVar("T")


@pytest.fixture
def api_database_url(database_url: str) -> str:
    """The migrated test database; every scheduler task is configured in it."""
    return database_url


#: Symbols the tests register that ``../shared/data/prices`` lacks, and the file each borrows.
#: Registration asks the source whether it has a symbol, so they must exist there.
EXTRA_PRICE_FILES = dict.fromkeys(
    (
        "BRK-B",
        "^GSPC",
        # The markets tests: one ticker per exchange.
        "0700.HK",
        "7203.T",
        "BHP.AX",
        "BRK.B",
        "EURUSD=X",
        "MC.PA",
        "PETR4",
        "FOO.XY",
        "RELIANCE.NS",
        "SAP.DE",
        "SHOP.TO",
        "VALE3.SA",
        "VOD",
        "VOD.L",
        "^BVSP",
        "^N225",
        # Batches and paging.
        "AAA",
        "BBB",
        "CCC",
        *(f"P{n:03d}" for n in range(25)),
    ),
    "SPY",
)


@pytest.fixture(scope="session")
def prices_dir(shared_prices_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared prices (linked, not copied) plus :data:`EXTRA_PRICE_FILES`."""
    directory = tmp_path_factory.mktemp("prices")
    for path in shared_prices_dir.glob("*.csv"):
        (directory / path.name).symlink_to(path)
    for symbol, borrowed in EXTRA_PRICE_FILES.items():
        (directory / f"{symbol}.csv").symlink_to(shared_prices_dir / f"{borrowed}.csv")
    # PETR4.SA: a source that has it, with nothing after the bars a markets test stores for it
    # (its prediction must not top them up with newer ones).
    lines = (shared_prices_dir / "SPY.csv").read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines[1:] if line[:10] <= "2018-12-28"]
    (directory / "PETR4.SA.csv").write_text("\n".join([lines[0], *kept]) + "\n", encoding="utf-8")
    return directory


def make_config(url: str, prices: Path, **overrides: Any) -> WebConfig:
    values: dict[str, Any] = {
        "database_url": url,
        "expected_revision": head_revision(),
        "api_keys": (API_KEY,),
        "source": f"csv:{prices}",
        "event_poll_interval_s": 0.05,
        "rate_limit_per_minute": 1000,
    }
    values.update(overrides)
    return WebConfig(**values)


@pytest.fixture
def make_client(
    api_database_url: str, prices_dir: Path
) -> Callable[..., contextlib.AbstractContextManager[TestClient[Any]]]:
    """``with make_client(**WebConfig overrides) as client:`` on the test database."""

    @contextlib.contextmanager
    def factory(**overrides: Any) -> Iterator[TestClient[Any]]:
        app = create_app(make_config(api_database_url, prices_dir, **overrides))
        with TestClient(app) as client:
            yield client

    return factory


@pytest.fixture
def client(
    make_client: Callable[..., contextlib.AbstractContextManager[TestClient[Any]]],
) -> Iterator[TestClient[Any]]:
    with make_client() as test_client:
        yield test_client


# --------------------------------------------------------------------------- seeding


@dataclass(frozen=True)
class Database:
    """Seeds and inspects the test database from the test's thread (its own engine and loop)."""

    url: str

    def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def main() -> T:
            engine = create_async_db_engine(self.url)
            try:
                async with create_session_factory(engine)() as session, session.begin():
                    return await work(session)
            finally:
                await engine.dispose()

        return asyncio.run(main())

    def count(self, table: str) -> int:
        if table not in WRITABLE_TABLES:
            raise ValueError(f"unexpected table {table!r}")
        engine = create_sync_db_engine(self.url)
        try:
            with engine.connect() as connection:
                return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
        finally:
            engine.dispose()

    def counts(self) -> dict[str, int]:
        return {table: self.count(table) for table in WRITABLE_TABLES}

    def watch(self, symbol: str, *, horizon: int = 3, lookback: int = 10) -> None:
        async def work(session: AsyncSession) -> None:
            await SymbolRepository(session).add(
                symbol=symbol, exchange=DEFAULT_EXCHANGE, horizon=horizon, lookback=lookback
            )

        self.run(work)

    def add_bars(self, symbol: str, bars: list[BarRecord]) -> None:
        async def work(session: AsyncSession) -> None:
            await PriceRepository(session).upsert(symbol, bars)

        self.run(work)

    def add_forecast(
        self,
        symbol: str,
        steps: list[ForecastStepRecord],
        *,
        issued_at: datetime,
        last_observed_date: date,
        last_close: float,
        model_kind: str = "naive",
        model_version_id: int | None = None,
        announce: bool = True,
    ) -> None:
        """Store a forecast the way the forecast job does: rows + ``forecast.ready``, one commit."""

        async def work(session: AsyncSession) -> None:
            await ForecastRepository(session).add_batch(
                symbol=symbol,
                model_version_id=model_version_id,
                model_kind=model_kind,
                issued_at=issued_at,
                last_observed_date=last_observed_date,
                last_close=last_close,
                steps=steps,
            )
            if announce:
                await EventRepository(session).append(
                    ForecastReady(
                        issued_at=issued_at,
                        model_kind=model_kind,
                        model_version_id=model_version_id,
                        steps=len(steps),
                        last_observed_date=last_observed_date,
                    ),
                    symbol=symbol,
                )

        self.run(work)

    def add_model(
        self,
        symbol: str,
        artifact: ModelArtifact,
        *,
        model_name: str | None = None,
        champion: bool = True,
        metrics: dict[str, float] | None = None,
        baseline_metrics: dict[str, Any] | None = None,
        mlflow_run_id: str | None = None,
        registry_name: str | None = None,
        registry_version: int | None = None,
    ) -> int:
        async def work(session: AsyncSession) -> int:
            repository = ModelVersionRepository(session)
            row = await repository.add(
                NewModelVersion(
                    symbol=symbol,
                    weights=artifact.weights,
                    metadata=artifact.metadata,
                    model_name=model_name,
                    metrics=metrics or {},
                    baseline_metrics=baseline_metrics or {},
                    mlflow_run_id=mlflow_run_id,
                    registry_name=registry_name,
                    registry_version=registry_version,
                )
            )
            if champion:
                await repository.promote(row.id)
            return row.id

        return self.run(work)

    def append_event(self, payload: EventPayload, symbol: str | None) -> int:
        async def work(session: AsyncSession) -> int:
            row = await EventRepository(session).append(payload, symbol=symbol)
            return int(row.id)

        return self.run(work)


@pytest.fixture
def db(api_database_url: str) -> Database:
    return Database(api_database_url)


def read_bars(
    prices: Path, symbol: str, *, last: int | None = None, until: date | None = None
) -> list[BarRecord]:
    """Real bars from the shared test data, as the repositories store them."""
    from forecasting.bars import read_bars_csv

    frame = read_bars_csv(str(prices / f"{symbol}.csv"))
    if until is not None:
        frame = frame[frame["date"] <= datetime(until.year, until.month, until.day)]
    if last is not None:
        frame = frame.tail(last)
    return [
        BarRecord(
            date=row.date.date(),
            open=float(row.open),
            high=float(row.high),
            low=float(row.low),
            close=float(row.close),
            adj_close=None,
            volume=float(row.volume),
        )
        for row in frame.itertuples(index=False)
    ]


@pytest.fixture
def bars_of(prices_dir: Path) -> Callable[..., list[BarRecord]]:
    def load(symbol: str, *, last: int | None = None, until: date | None = None) -> list[BarRecord]:
        return read_bars(prices_dir, symbol, last=last, until=until)

    return load


# --------------------------------------------------------------------------- a real tiny model


@pytest.fixture(scope="session")
def tiny_artifact(shared_prices_dir: Path) -> ModelArtifact:
    """A real LSTM (8 hidden units, window 10, 3 steps) fitted for two epochs on 300 days of DIS.

    Trained through the forecasting package's own wrapper (Lightning, in the test process only);
    the API loads it with the plain-torch predictor like any stored model.
    """
    from forecasting.bars import read_bars_csv
    from forecasting.config import ModelConfig, TrainConfig
    from forecasting.model import LSTMForecaster

    bars = read_bars_csv(str(shared_prices_dir / "DIS.csv")).tail(300).reset_index(drop=True)
    model = LSTMForecaster(
        ModelConfig(lookback=10, horizon=3, hidden_size=8, num_layers=1, dropout=0.0),
        TrainConfig(
            epochs=2, batch_size=32, accelerator="cpu", max_history=None, patience=1, seed=0
        ),
    )
    model.fit(bars)
    return model.to_artifact(symbol="DIS")


def utc(year: int, month: int, day: int, hour: int = 22) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.fixture
def api_key() -> str:
    return API_KEY


@pytest.fixture
def auth() -> dict[str, str]:
    """The header every write needs."""
    return dict(KEY)
