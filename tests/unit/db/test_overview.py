"""The watchlist overview query (both backends): the newest bar, forecast, champion and job of each
active symbol, in a number of statements that does not grow with the watchlist."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.models import JobStatus
from db.repositories import (
    BarRecord,
    ForecastRepository,
    ForecastStepRecord,
    JobRepository,
    ModelVersionRepository,
    NewModelVersion,
    PriceRepository,
    SymbolRepository,
)
from db.repositories.overview import OverviewRepository
from forecasting.calendar import DEFAULT_EXCHANGE

pytestmark = pytest.mark.anyio

Sessions = async_sessionmaker[AsyncSession]
START = date(2024, 3, 1)


def _bar(day: date, close: float) -> BarRecord:
    return BarRecord(
        date=day, open=close, high=close, low=close, close=close, adj_close=None, volume=1.0
    )


async def _watch(session: AsyncSession, symbol: str, *, offset: float) -> None:
    """A symbol with three bars, two forecasts, a champion and two jobs, newest last."""
    await SymbolRepository(session).add(
        symbol=symbol, exchange=DEFAULT_EXCHANGE, horizon=2, lookback=10
    )
    await PriceRepository(session).upsert(
        symbol, [_bar(START + timedelta(days=n), offset + n) for n in range(3)]
    )
    forecasts = ForecastRepository(session)
    for hours, point in ((48, offset), (1, offset + 10)):
        await forecasts.add_batch(
            symbol=symbol,
            model_version_id=None,
            model_kind="naive",
            issued_at=datetime(2024, 3, 4, tzinfo=UTC) - timedelta(hours=hours),
            last_observed_date=START,
            last_close=offset,
            steps=[
                ForecastStepRecord(
                    step=step,
                    target_date=START + timedelta(days=step),
                    point=point + step,
                    lower_80=0,
                    upper_80=1e6,
                    lower_95=0,
                    upper_95=1e6,
                    naive=offset,
                )
                for step in (2, 1)  # stored out of order: the overview sorts by step
            ],
        )
    versions = ModelVersionRepository(session)
    version = await versions.add(NewModelVersion(symbol=symbol, weights=b"w", metadata={}))
    await versions.promote(version.id)
    jobs = JobRepository(session)
    await jobs.record_queued(job_id=f"{symbol}-1", kind="ingest", symbol=symbol)
    await jobs.finish(f"{symbol}-1", status=JobStatus.SUCCEEDED)
    await jobs.record_queued(job_id=f"{symbol}-2", kind="forecast", symbol=symbol)


async def test_newest_of_each_thing_per_symbol(sessions: Sessions) -> None:
    async with sessions() as session, session.begin():
        await _watch(session, "DIS", offset=100)
        await _watch(session, "SPY", offset=400)
        await SymbolRepository(session).add(
            symbol="NEW", exchange=DEFAULT_EXCHANGE, horizon=2, lookback=10
        )
        await SymbolRepository(session).add(
            symbol="OLD", exchange=DEFAULT_EXCHANGE, horizon=2, lookback=10
        )
        await SymbolRepository(session).deactivate("OLD")

    async with sessions() as session:
        overview = await OverviewRepository(session).watchlist()

    assert [item.symbol.symbol for item in overview] == ["DIS", "NEW", "SPY"]
    dis, new, spy = overview
    assert dis.last_bar is not None and (dis.last_bar.date, dis.last_bar.close) == (
        START + timedelta(days=2),
        102,
    )
    assert [(row.step, row.point) for row in dis.forecast] == [(1, 111), (2, 112)]
    assert [(row.step, row.point) for row in spy.forecast] == [(1, 411), (2, 412)]
    assert dis.champion is not None and dis.champion.symbol == "DIS"
    assert dis.last_job is not None and dis.last_job.id == "DIS-2"
    assert spy.last_job is not None and spy.last_job.id == "SPY-2"
    assert new.last_bar is None and new.forecast == [] and new.champion is None
    assert new.last_job is None


async def test_statements_do_not_grow_with_the_watchlist(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    async def overview_statements() -> int:
        statements.clear()
        event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            async with sessions() as session:
                await OverviewRepository(session).watchlist()
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", count)
        return len(statements)

    async with sessions() as session, session.begin():
        await _watch(session, "AAA", offset=10)
    with_one = await overview_statements()
    async with sessions() as session, session.begin():
        for index, name in enumerate(("BBB", "CCC", "DDD", "EEE")):
            await _watch(session, name, offset=20 + index)
    with_five = await overview_statements()
    assert with_one == with_five == 5


async def test_next_day_outcomes_are_the_latest_evaluated_first_steps(sessions: Sessions) -> None:
    async with sessions() as session, session.begin():
        forecasts = ForecastRepository(session)
        for day in range(6):
            origin = START + timedelta(days=day)
            await forecasts.add_batch(
                symbol="DIS",
                model_version_id=None,
                model_kind="naive",
                issued_at=datetime(2024, 3, 1, 22, tzinfo=UTC) + timedelta(days=day),
                last_observed_date=origin,
                last_close=100 + day,
                steps=[
                    ForecastStepRecord(
                        step=step,
                        target_date=origin + timedelta(days=step),
                        point=100 + day + step / 10,
                        lower_80=0,
                        upper_80=1e6,
                        lower_95=0,
                        upper_95=1e6,
                        naive=100 + day,
                    )
                    for step in (1, 2)
                ],
            )
        # Closes known up to START + 5: next-day targets START+1 .. START+5 matured, not START+6.
        matured = await forecasts.matured_unevaluated("DIS", START + timedelta(days=5))
        await forecasts.record_actuals(
            matured, {START + timedelta(days=n): 200.0 + n for n in range(1, 6)}
        )

    async with sessions() as session:
        rows = await OverviewRepository(session).next_day_outcomes("DIS", limit=3)
        everything = await OverviewRepository(session).next_day_outcomes("DIS", limit=100)
        other = await OverviewRepository(session).next_day_outcomes("SPY", limit=100)

    assert [row.target_date for row in rows] == [START + timedelta(days=n) for n in (3, 4, 5)]
    assert all(row.step == 1 for row in everything) and len(everything) == 5
    assert [row.actual for row in rows] == [203.0, 204.0, 205.0]
    assert other == []
