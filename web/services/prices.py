"""Prices for on-demand predictions: the stored bars, topped up from the source when stale.

"Stale" means the last stored bar is older than the exchange's last closed session. The top-up is
a best effort bounded by ``source_timeout_s``: when the source is slow, down or has nothing new,
the prediction goes ahead on the stored bars and says so (``stale``, ``note``). Only when the
stored bars are too few for the model *and* the source failed is the request refused (503).
A symbol's refresh is attempted at most once per ``refresh_cooldown_s``, so a burst of predictions
does not hammer the source. New bars are upserted (idempotent, like the ingest job) and announced
with a ``prices.ingested`` event.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import PricesIngested
from db.repositories import BarRecord, EventRepository, PriceRepository
from web.errors import InsufficientPricesError, PricesUnavailableError
from web.schemas.ondemand import PriceFreshness

if TYPE_CHECKING:
    import pandas as pd

    from forecasting.sources import PriceSource

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class _Refresh:
    new_bars: int
    note: str | None
    failed: bool


class PriceRefresher:
    """Loads a symbol's recent bars for a prediction, refreshing them from the source if stale."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        source_spec: str,
        timeout_s: float,
        cooldown_s: float,
        source: PriceSource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``source``: a ready source instead of the one ``source_spec`` names (built on first
        use otherwise); tests hand in one that stands in for an unreachable Yahoo."""
        self._sessions = sessions
        self._source_spec = source_spec
        self._timeout = timeout_s
        self._cooldown = cooldown_s
        self._clock = clock
        self._source: PriceSource | None = source
        self._last_attempt: dict[str, float] = {}

    async def load(
        self, symbol: str, *, need_rows: int, exchange: str
    ) -> tuple[pd.DataFrame, PriceFreshness]:
        """At least ``need_rows`` of the latest bars of ``symbol`` as a bars frame."""
        records = await self._stored(symbol, need_rows)
        expected = await anyio.to_thread.run_sync(_last_closed_session, exchange)
        last = records[-1].date if records else None
        needs_more = len(records) < need_rows
        outdated = last is None or (expected is not None and last < expected)
        refresh = _Refresh(new_bars=0, note=None, failed=False)
        attempted = False
        if (needs_more or outdated) and self._may_attempt(symbol):
            attempted = True
            start = (
                last + timedelta(days=1)
                if last is not None and not needs_more
                else _history_start(expected, need_rows)
            )
            refresh = await self._refresh(symbol, start=start, end=expected)
            if refresh.new_bars:
                records = await self._stored(symbol, need_rows)
                last = records[-1].date
        if len(records) < need_rows:
            if refresh.failed and refresh.note:
                raise PricesUnavailableError(
                    symbol, have=len(records), need=need_rows, reason=refresh.note
                )
            raise InsufficientPricesError(symbol, have=len(records), need=need_rows)
        if last is None:  # unreachable: need_rows >= 1 rows are there
            raise InsufficientPricesError(symbol, have=0, need=need_rows)
        stale = expected is not None and last < expected
        note = refresh.note
        if stale and note is None:
            note = (
                f"the price source has no bars after {last.isoformat()}"
                if attempted
                else f"not refreshed: the source was asked less than {self._cooldown:g} s ago"
            )
        return _frame(records), PriceFreshness(
            last_bar_date=last,
            expected_last_session=expected,
            refreshed=refresh.new_bars > 0,
            new_bars=refresh.new_bars,
            stale=stale,
            note=note,
        )

    def _may_attempt(self, symbol: str) -> bool:
        now = self._clock()
        previous = self._last_attempt.get(symbol)
        if previous is not None and now - previous < self._cooldown:
            return False
        self._last_attempt[symbol] = now
        return True

    async def _stored(self, symbol: str, need_rows: int) -> list[BarRecord]:
        async with self._sessions() as session:
            return await PriceRepository(session).load(symbol, last=need_rows)

    async def _refresh(self, symbol: str, *, start: date, end: date | None) -> _Refresh:
        from forecasting.sources import NoDataError, SourceError
        from forecasting.validation import InvalidBarsError

        try:
            with anyio.fail_after(self._timeout):
                frame = await anyio.to_thread.run_sync(
                    self._fetch, symbol, start, end, abandon_on_cancel=True
                )
        except TimeoutError:
            note = f"the price source did not answer within {self._timeout:g} s"
            logger.warning("refreshing %s: %s", symbol, note)
            return _Refresh(new_bars=0, note=note, failed=True)
        except NoDataError:
            return _Refresh(new_bars=0, note="the price source has no newer bars", failed=False)
        except (SourceError, InvalidBarsError, ValueError, OSError) as exc:
            logger.warning("refreshing %s failed: %s", symbol, exc)
            return _Refresh(new_bars=0, note=f"the price source failed: {exc}", failed=True)
        bars = _records(frame)
        if not bars:
            return _Refresh(new_bars=0, note="the price source has no newer bars", failed=False)
        async with self._sessions() as session, session.begin():
            written = await PriceRepository(session).upsert(symbol, bars)
            await EventRepository(session).append(
                PricesIngested(
                    rows=written,
                    first_date=bars[0].date,
                    last_date=bars[-1].date,
                    source=self._source_spec.partition(":")[0],
                    via="predict",
                ),
                symbol=symbol,
            )
        return _Refresh(new_bars=written, note=None, failed=False)

    def _fetch(self, symbol: str, start: date, end: date | None) -> pd.DataFrame:
        """In a worker thread: the source (built on first use: yfinance is a heavy import)."""
        if self._source is None:
            from forecasting.sources import make_source

            self._source = make_source(self._source_spec, timeout=self._timeout)
        return self._source.fetch(symbol, start, end, drop_bad=True)


def _last_closed_session(exchange: str) -> date | None:
    from forecasting.calendar import last_closed_session

    try:
        return last_closed_session(datetime.now(UTC), exchange)
    except ValueError:
        # Outside the calendar's range (a far-future clock): judge freshness by the bars alone.
        return None


def _history_start(expected: date | None, need_rows: int) -> date:
    """A start date far enough back for ``need_rows`` sessions (252 sessions in 365 days)."""
    reference = expected or datetime.now(UTC).date()
    return reference - timedelta(days=math.ceil(need_rows * 365 / 252) + 30)


def _records(frame: pd.DataFrame) -> list[BarRecord]:
    from forecasting.bars import bar_rows

    return [BarRecord(**row) for row in bar_rows(frame)]


def _frame(records: list[BarRecord]) -> pd.DataFrame:
    from forecasting.bars import bars_from_fields

    return bars_from_fields(records)
