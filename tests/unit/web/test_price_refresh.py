"""Prices for on-demand predictions when the source is slow, down or has news; the source here
stands in for Yahoo (the network edge), the database is real."""

from __future__ import annotations

import threading
import time
from datetime import date

import pandas as pd
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories import BarRecord, PriceRepository
from forecasting.bars import read_bars_csv
from forecasting.calendar import DEFAULT_EXCHANGE
from forecasting.sources import SAMPLE_DIRECTORY, SourceUnavailableError
from web.errors import InsufficientPricesError, PricesUnavailableError
from web.services.prices import PriceRefresher

pytestmark = pytest.mark.anyio


class SlowYahoo:
    """Answers after ``delay`` seconds (or never, within a test), like a hung HTTP call."""

    name = "yfinance"

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0
        self.released = threading.Event()

    def fetch(
        self,
        symbol: str,
        start: date | None = None,
        end: date | None = None,
        *,
        drop_bad: bool = False,
    ) -> pd.DataFrame:
        self.calls += 1
        self.released.wait(self.delay)
        raise SourceUnavailableError(source=self.name, detail="gave up")


class DownYahoo:
    name = "yfinance"

    def fetch(
        self,
        symbol: str,
        start: date | None = None,
        end: date | None = None,
        *,
        drop_bad: bool = False,
    ) -> pd.DataFrame:
        raise SourceUnavailableError(source=self.name, detail="HTTP 503")


class RecordedYahoo:
    """Serves the real bars of a CSV file for the requested range."""

    name = "yfinance"

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.requests: list[tuple[date | None, date | None]] = []

    def fetch(
        self,
        symbol: str,
        start: date | None = None,
        end: date | None = None,
        *,
        drop_bad: bool = False,
    ) -> pd.DataFrame:
        self.requests.append((start, end))
        mask = pd.Series(True, index=self.frame.index)
        if start is not None:
            mask &= self.frame["date"] >= pd.Timestamp(start)
        if end is not None:
            mask &= self.frame["date"] <= pd.Timestamp(end)
        return self.frame.loc[mask].reset_index(drop=True)


def _records(frame: pd.DataFrame) -> list[BarRecord]:
    return [
        BarRecord(
            date=row.date.date(),
            open=row.open,
            high=row.high,
            low=row.low,
            close=row.close,
            adj_close=None,
            volume=row.volume,
        )
        for row in frame.itertuples(index=False)
    ]


@pytest.fixture
def spy() -> pd.DataFrame:
    """The last 30 bars of the bundled sample's SPY (real prices, inside the repository)."""
    return read_bars_csv(str(SAMPLE_DIRECTORY / "SPY.csv")).tail(30).reset_index(drop=True)


async def _store(sessions: async_sessionmaker[AsyncSession], frame: pd.DataFrame) -> None:
    async with sessions() as session, session.begin():
        await PriceRepository(session).upsert("SPY", _records(frame))


async def test_a_hung_source_is_abandoned_after_the_timeout(
    sessions: async_sessionmaker[AsyncSession], spy: pd.DataFrame
) -> None:
    await _store(sessions, spy)
    source = SlowYahoo(delay=30)
    refresher = PriceRefresher(
        sessions, source_spec="yfinance", timeout_s=0.2, cooldown_s=60, source=source
    )
    started = time.perf_counter()
    try:
        frame, freshness = await refresher.load("SPY", need_rows=20, exchange=DEFAULT_EXCHANGE)
    finally:
        source.released.set()
    assert time.perf_counter() - started < 5
    assert len(frame) == 20
    assert freshness.stale and not freshness.refreshed
    assert freshness.note == "the price source did not answer within 0.2 s"


async def test_without_enough_bars_a_failing_source_is_a_503(
    sessions: async_sessionmaker[AsyncSession], spy: pd.DataFrame
) -> None:
    await _store(sessions, spy.tail(5))
    refresher = PriceRefresher(
        sessions, source_spec="yfinance", timeout_s=1, cooldown_s=60, source=DownYahoo()
    )
    with pytest.raises(PricesUnavailableError, match="HTTP 503"):
        await refresher.load("SPY", need_rows=20, exchange=DEFAULT_EXCHANGE)


async def test_missing_bars_are_fetched_stored_and_not_asked_for_again_within_the_cooldown(
    sessions: async_sessionmaker[AsyncSession], spy: pd.DataFrame
) -> None:
    await _store(sessions, spy.head(25))
    source = RecordedYahoo(spy)
    refresher = PriceRefresher(
        sessions, source_spec="yfinance", timeout_s=5, cooldown_s=60, source=source
    )

    frame, freshness = await refresher.load("SPY", need_rows=20, exchange=DEFAULT_EXCHANGE)

    assert (freshness.refreshed, freshness.new_bars) == (True, 5)
    assert freshness.last_bar_date == spy["date"].iloc[-1].date()
    # Asked for what follows the last stored bar only.
    assert source.requests[0][0] == spy["date"].iloc[24].date() + pd.Timedelta(days=1)
    assert frame["date"].iloc[-1] == spy["date"].iloc[-1]
    async with sessions() as session:
        assert await PriceRepository(session).count("SPY") == 30

    _, again = await refresher.load("SPY", need_rows=20, exchange=DEFAULT_EXCHANGE)
    assert len(source.requests) == 1
    assert not again.refreshed
    assert again.note is not None and "asked less than 60 s ago" in again.note


async def test_too_little_history_anywhere_is_a_409_not_a_503(
    sessions: async_sessionmaker[AsyncSession], spy: pd.DataFrame
) -> None:
    class NewListing(RecordedYahoo):
        """A symbol that has traded for four days: the source has nothing more to give."""

        def fetch(
            self,
            symbol: str,
            start: date | None = None,
            end: date | None = None,
            *,
            drop_bad: bool = False,
        ) -> pd.DataFrame:
            self.requests.append((start, end))
            return self.frame

    refresher = PriceRefresher(
        sessions, source_spec="yfinance", timeout_s=5, cooldown_s=60, source=NewListing(spy.tail(4))
    )
    with pytest.raises(
        InsufficientPricesError, match="has 4 stored daily bars; the model needs 20"
    ):
        await refresher.load("SPY", need_rows=20, exchange=DEFAULT_EXCHANGE)
