"""Every symbol of the bundled sample can be watched and gets a forecast, and its backfill counts
its years back from the newest bar the sample has, not from today's date (issue 13)."""

from __future__ import annotations

import csv
from datetime import date

import pytest

from db.contracts import SymbolAdded
from db.kinds import JobKind
from db.repositories import EventRepository, ForecastRepository, PriceRepository, SymbolRepository
from forecasting.calendar import DEFAULT_EXCHANGE
from forecasting.sources import SAMPLE_DIRECTORY
from scheduler.ingest import backfill_start

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

BACKFILL_YEARS = 10


def _sample_dates(symbol: str) -> list[date]:
    with (SAMPLE_DIRECTORY / f"{symbol}.csv").open(encoding="utf-8") as handle:
        return [date.fromisoformat(row["date"]) for row in csv.DictReader(handle)]


BUNDLED = sorted(path.stem for path in SAMPLE_DIRECTORY.glob("*.csv"))


async def test_every_bundled_symbol_is_backfilled_from_its_newest_bar_and_forecast(
    harness,
) -> None:
    assert BUNDLED == ["AAPL", "GOOG", "INTC", "SPY"]
    config = harness.config(source="sample", backfill_years=BACKFILL_YEARS)
    async with harness.node(config) as node, harness.client() as client:
        for symbol in BUNDLED:
            async with harness.sessions.begin() as session:
                await SymbolRepository(session).add(
                    symbol=symbol, exchange=DEFAULT_EXCHANGE, horizon=3, lookback=10
                )
                await EventRepository(session).append(
                    SymbolAdded(horizon=3, lookback=10, retrain_cadence="weekly"), symbol=symbol
                )
            await harness.enqueue(client, JobKind.INGEST, {"symbol": symbol}, symbol=symbol)

        async def all_forecast() -> bool:
            async with harness.sessions() as session:
                repository = ForecastRepository(session)
                return all([await repository.latest(symbol) for symbol in BUNDLED])

        # The naive forecast follows each backfill; the trainings the ingest queues are not
        # waited for (a forced stop below abandons them).
        await harness.wait_for(all_forecast, within=120, what="a forecast of every symbol")
        node.request_stop(force=True)

    for symbol in BUNDLED:
        dates = _sample_dates(symbol)
        newest = dates[-1]
        expected = [d for d in dates if d >= backfill_start(newest, BACKFILL_YEARS)]
        async with harness.sessions() as session:
            prices = PriceRepository(session)
            stored = await prices.count(symbol)
            last = await prices.last_date(symbol)
            latest = await ForecastRepository(session).latest(symbol)
        assert last == newest, symbol
        assert stored == len(expected), symbol
        assert latest[0].last_observed_date == newest, symbol
        assert [row.step for row in latest] == [1, 2, 3], symbol
    # INTC's file (1995-2004) is shorter than the window: all of it; counted from today, none.
    assert await _count(harness, "INTC") == len(_sample_dates("INTC"))
    # SPY: ten years before August 2020, about 2,500 sessions (counted from 2026: about 950).
    assert 2_400 < await _count(harness, "SPY") < 2_600


async def _count(harness, symbol: str) -> int:
    async with harness.sessions() as session:
        return await PriceRepository(session).count(symbol)
