"""The ingest job tells where the source knows better: yfinance's chart metadata (exchange,
currency, time zone) is compared with the symbol's listing, and a difference is a warning on the
job's result and a ``listing.checked`` event, announced once per change, on both backends.

The source is the real :class:`YFinanceSource`, so the metadata goes through yfinance's own code;
only the network edge is fake: the canned Yahoo server of the yfinance source tests, answering for
PETR4.SA (B3, in BRL) with its December 2018 chart.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import anyio
import pytest

from db.contracts import IngestResult, SymbolArguments
from db.kinds import EventType, JobKind
from db.repositories import PriceRepository, SymbolRepository
from forecasting.sources.yahoo import YFinanceSource
from scheduler.ingest import ingest_prices
from scheduler.runner import JobContext
from scheduler.runtime import WorkerRuntime
from tests.unit.forecasting.test_sources_yfinance import (
    YahooServer,
    petr4_chart,
    self_signed_context,
    session_to,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def yahoo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[YahooServer]:
    server = YahooServer(self_signed_context(tmp_path_factory.mktemp("tls")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.fake.charts["PETR4.SA"] = petr4_chart()
    yield server
    server.fake.closing.set()
    server.shutdown()
    server.server_close()


class Ingests:
    """Runs the ingest job the way a worker does, with the yfinance source on the fake Yahoo."""

    def __init__(self, harness: Any, yahoo: YahooServer) -> None:
        self.harness = harness
        self.source = YFinanceSource(timeout=5.0, session=session_to(yahoo.server_address[1]))
        self.runs = 0

    @asynccontextmanager
    async def runtime(self) -> AsyncIterator[WorkerRuntime]:
        async with self.harness.client() as scheduler:
            yield WorkerRuntime(
                # The canned chart is from 2018: the backfill reaches back that far.
                config=self.harness.config(backfill_years=12),
                identity="test-worker",
                engine=self.harness.engine,
                sessions=self.harness.sessions,
                scheduler=scheduler,
                source=self.source,
                train_limiter=anyio.CapacityLimiter(1),
            )

    async def run(self, symbol: str) -> IngestResult:
        self.runs += 1
        async with self.runtime() as runtime:
            result = await ingest_prices(
                JobContext(
                    runtime=runtime,
                    job_id=f"ingest-{self.runs}",
                    kind=JobKind.INGEST,
                    arguments=SymbolArguments(symbol=symbol),
                    attempt=1,
                )
            )
        assert isinstance(result, IngestResult)
        return result


async def _watch(harness: Any, symbol: str, exchange: str) -> None:
    async with harness.sessions.begin() as session:
        await SymbolRepository(session).add(symbol=symbol, exchange=exchange, horizon=3, lookback=5)


async def _listing_events(harness: Any) -> list[dict[str, Any]]:
    return [
        event.payload
        for event in await harness.events()
        if event.type == EventType.LISTING_CHECKED.value
    ]


async def test_a_b3_share_on_b3_agrees_with_yahoo(harness: Any, yahoo: YahooServer) -> None:
    await _watch(harness, "PETR4.SA", "BVMF")
    ingests = Ingests(harness, yahoo)

    result = await ingests.run("PETR4.SA")

    assert result.rows == 11
    assert (result.first_date, result.last_date) == (date(2018, 12, 17), date(2019, 1, 4))
    assert result.listing_warnings == []
    assert await _listing_events(harness) == []
    async with harness.sessions() as session:
        assert await PriceRepository(session).last_date("PETR4.SA") == date(2019, 1, 4)


async def test_a_b3_share_watched_on_new_york_is_reported_once_per_change(
    harness: Any, yahoo: YahooServer
) -> None:
    # Registered on New York by mistake (an explicit exchange); Yahoo says São Paulo, in BRL.
    await _watch(harness, "PETR4.SA", "XNYS")
    ingests = Ingests(harness, yahoo)

    first = await ingests.run("PETR4.SA")

    assert first.rows == 11  # a disagreement is reported, never a reason to lose the bars
    assert len(first.listing_warnings) == 3
    assert "SAO (BVMF), not on XNYS" in first.listing_warnings[0]
    assert "in BRL, not in USD" in first.listing_warnings[1]
    assert "America/Sao_Paulo" in first.listing_warnings[2]
    [checked] = await _listing_events(harness)
    assert checked["exchange"] == "XNYS"
    assert checked["source"] == "yfinance"
    assert checked["job_id"] == "ingest-1"
    assert [
        (note["field"], note["expected"], note["reported"]) for note in checked["disagreements"]
    ] == [
        ("exchange", "XNYS", "BVMF"),
        ("currency", "USD", "BRL"),
        ("timezone", "America/New_York", "America/Sao_Paulo"),
    ]

    # The next ingest finds the same: the result says it again, the event log does not.
    second = await ingests.run("PETR4.SA")
    assert second.rows == 0
    assert second.listing_warnings == first.listing_warnings
    assert len(await _listing_events(harness)) == 1

    # Moved to B3 (PATCH /symbols), the next ingest agrees, and says that it now does.
    async with harness.sessions.begin() as session:
        await SymbolRepository(session).update("PETR4.SA", exchange="BVMF")
    third = await ingests.run("PETR4.SA")
    assert third.listing_warnings == []
    events = await _listing_events(harness)
    assert len(events) == 2
    assert (events[-1]["exchange"], events[-1]["disagreements"]) == ("BVMF", [])

    # And agreement, once announced, is not announced again.
    await ingests.run("PETR4.SA")
    assert len(await _listing_events(harness)) == 2
