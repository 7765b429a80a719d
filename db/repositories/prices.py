"""Queries on daily price bars: idempotent upserts and chronological reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import utcnow
from db.models import PriceBar
from db.repositories._dialect import dialect_insert

_UPSERT_CHUNK = 500  # rows per statement; well under SQLite's bound-parameter limit


@dataclass(frozen=True, kw_only=True, slots=True)
class BarRecord:
    """One daily bar as the repositories exchange it (no pandas in ``db``)."""

    date: date
    open: float
    high: float
    low: float
    close: float
    adj_close: float | None
    volume: float


class PriceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def upsert(self, symbol: str, bars: Iterable[BarRecord]) -> int:
        """Insert or overwrite bars by (symbol, date); returns the number of rows written.

        Re-running an ingest is harmless: the same bars overwrite themselves, and a vendor's
        corrected bar replaces the old one.
        """
        rows = [
            {
                "symbol": symbol,
                "date": bar.date,
                "open": bar.open,
                "high": bar.high,
                "low": bar.low,
                "close": bar.close,
                "adj_close": bar.adj_close,
                "volume": bar.volume,
            }
            for bar in bars
        ]
        for start in range(0, len(rows), _UPSERT_CHUNK):
            chunk = rows[start : start + _UPSERT_CHUNK]
            statement = dialect_insert(self._session, PriceBar).values(chunk)
            excluded = statement.excluded
            statement = statement.on_conflict_do_update(
                index_elements=[PriceBar.symbol, PriceBar.date],
                set_={
                    "open": excluded.open,
                    "high": excluded.high,
                    "low": excluded.low,
                    "close": excluded.close,
                    "adj_close": excluded.adj_close,
                    "volume": excluded.volume,
                    "fetched_at": utcnow(),
                },
            )
            await self._session.execute(statement)
        return len(rows)

    async def last_date(self, symbol: str) -> date | None:
        result = await self._session.execute(
            select(func.max(PriceBar.date)).where(PriceBar.symbol == symbol)
        )
        return result.scalar_one_or_none()

    async def count(self, symbol: str) -> int:
        result = await self._session.execute(
            select(func.count()).select_from(PriceBar).where(PriceBar.symbol == symbol)
        )
        return int(result.scalar_one())

    async def load(
        self,
        symbol: str,
        *,
        start: date | None = None,
        end: date | None = None,
        last: int | None = None,
    ) -> list[BarRecord]:
        """Bars of ``symbol`` in ascending date order, within [start, end], or only the ``last`` N."""
        query = select(PriceBar).where(PriceBar.symbol == symbol)
        if start is not None:
            query = query.where(PriceBar.date >= start)
        if end is not None:
            query = query.where(PriceBar.date <= end)
        if last is not None:
            query = query.order_by(PriceBar.date.desc()).limit(last)
        else:
            query = query.order_by(PriceBar.date)
        rows: Sequence[PriceBar] = (await self._session.execute(query)).scalars().all()
        records = [_to_record(row) for row in rows]
        if last is not None:
            records.reverse()
        return records

    async def closes_on(self, symbol: str, dates: Iterable[date]) -> dict[date, float]:
        """The close of ``symbol`` on each of ``dates`` that has a bar."""
        wanted = sorted(set(dates))
        if not wanted:
            return {}
        result = await self._session.execute(
            select(PriceBar.date, PriceBar.close).where(
                PriceBar.symbol == symbol, PriceBar.date.in_(wanted)
            )
        )
        return {row.date: row.close for row in result}


def _to_record(row: PriceBar) -> BarRecord:
    return BarRecord(
        date=row.date,
        open=row.open,
        high=row.high,
        low=row.low,
        close=row.close,
        adj_close=row.adj_close,
        volume=row.volume,
    )
