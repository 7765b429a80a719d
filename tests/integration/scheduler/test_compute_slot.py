"""A node's refresh batches take turns for their CPU work (the node's compute slot) and overlap
their waits: with the slot held, a batch on a local source waits before it parses a file, one on
a network source fetches and stores its bars and waits only to forecast; both finish once the
slot is free. On both backends, with a real batch job body and real threads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import anyio
import pandas as pd
import pytest
from sqlalchemy import func, select

from db.contracts import RefreshBatchArguments, RefreshBatchResult
from db.kinds import JobKind
from db.models import ForecastRow
from db.repositories import PriceRepository, SymbolRepository
from forecasting.calendar import DEFAULT_EXCHANGE
from forecasting.sources import CsvSource, PriceSource, reads_locally
from scheduler.conversions import frame_to_records
from scheduler.refresh import refresh_batch
from scheduler.runner import JobContext
from scheduler.runtime import WorkerRuntime
from tests.integration.scheduler.conftest import HORIZON, LOOKBACK

pytestmark = pytest.mark.anyio

SYMBOLS = ("DIS", "KO")


class FarAwaySource:
    """The CSV files served as a network source would serve them: it does not say that it reads
    locally (Yahoo's source does not either), so its fetches are waits, not CPU work."""

    def __init__(self, base: CsvSource) -> None:
        self.base = base
        self.name = "far"

    def fetch(
        self,
        symbol: str,
        start: date | None = None,
        end: date | None = None,
        *,
        drop_bad: bool = False,
    ) -> pd.DataFrame:
        return self.base.fetch(symbol, start, end, drop_bad=drop_bad)


async def _watch_all_but_the_newest_bar(harness: Any) -> tuple[date, date]:
    """Watch SYMBOLS with their bars but the newest; (the stored last bar, the newest)."""
    source = CsvSource(harness.prices_dir)
    lasts, newest = [], []
    for symbol in SYMBOLS:
        harness.write_prices(symbol)
        records = frame_to_records(source.fetch(symbol))
        async with harness.sessions.begin() as session:
            await SymbolRepository(session).add(
                symbol=symbol, exchange=DEFAULT_EXCHANGE, horizon=HORIZON, lookback=LOOKBACK
            )
            await PriceRepository(session).upsert(symbol, records[:-1])
        lasts.append(records[-2].date)
        newest.append(records[-1].date)
    assert len(set(lasts)) == 1 and len(set(newest)) == 1, "the shared files end together"
    return lasts[0], newest[0]


async def _forecasts(harness: Any) -> int:
    async with harness.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(ForecastRow))).scalar())


async def _last_bars(harness: Any) -> set[date | None]:
    async with harness.sessions() as session:
        lasts = await PriceRepository(session).last_dates(list(SYMBOLS))
    return {lasts.get(symbol) for symbol in SYMBOLS}


Check = Callable[[date, date], Awaitable[None]]


async def _run_with_the_slot_held(
    harness: Any, source: PriceSource, while_held: Check
) -> RefreshBatchResult:
    """Run one refresh batch of SYMBOLS while the test holds the node's compute slot; once the
    batch waits for it, check ``while_held(stored last bar, newest bar)``, then free the slot
    and let the batch finish."""
    stored_last, newest = await _watch_all_but_the_newest_bar(harness)
    results: list[Any] = []
    async with harness.client() as scheduler:
        runtime = WorkerRuntime(
            config=harness.config(),
            identity="test-worker",
            engine=harness.engine,
            sessions=harness.sessions,
            scheduler=scheduler,
            source=source,
            train_limiter=anyio.CapacityLimiter(1),
        )
        context = JobContext(
            runtime=runtime,
            job_id="batch-1",
            kind=JobKind.REFRESH_BATCH,
            arguments=RefreshBatchArguments(
                exchange=DEFAULT_EXCHANGE, session=newest, symbols=list(SYMBOLS)
            ),
            attempt=1,
        )
        slot = runtime.compute_limiter
        await slot.acquire()
        held = True
        try:
            async with anyio.create_task_group() as group:

                async def run() -> None:
                    results.append(await refresh_batch(context))

                group.start_soon(run)

                async def waiting() -> bool:
                    return slot.statistics().tasks_waiting == 1

                await harness.wait_for(waiting, within=30, what="the batch to wait for the slot")
                await while_held(stored_last, newest)
                slot.release()
                held = False
        finally:
            if held:
                slot.release()
    [result] = results
    assert isinstance(result, RefreshBatchResult)
    assert result.forecast == len(SYMBOLS) and result.failed_count == 0
    assert await _last_bars(harness) == {newest}
    assert await _forecasts(harness) > 0
    return result


async def test_a_local_sources_batch_waits_for_the_slot_before_it_parses(harness: Any) -> None:
    source = CsvSource(harness.prices_dir)
    assert reads_locally(source)

    async def nothing_fetched_yet(stored_last: date, newest: date) -> None:
        assert stored_last < newest
        assert await _last_bars(harness) == {stored_last}
        assert await _forecasts(harness) == 0

    await _run_with_the_slot_held(harness, source, nothing_fetched_yet)


async def test_a_network_sources_batch_fetches_and_stores_while_the_slot_is_held(
    harness: Any,
) -> None:
    source = FarAwaySource(CsvSource(harness.prices_dir))
    assert not reads_locally(source)

    async def stored_but_not_forecast(stored_last: date, newest: date) -> None:
        assert stored_last < newest
        assert await _last_bars(harness) == {newest}  # fetched and stored: no turn needed
        assert await _forecasts(harness) == 0  # forecasting is CPU work: it waits its turn

    await _run_with_the_slot_held(harness, source, stored_but_not_forecast)
