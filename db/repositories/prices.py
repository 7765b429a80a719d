"""Queries on daily price bars: idempotent upserts and chronological reads."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import utcnow
from db.models import PriceBar
from db.repositories._dialect import dialect_insert, within_dates

_UPSERT_CHUNK = 5000  # rows per execution (bounds the parameter lists held at once)


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

    async def upsert_many(self, bars: Mapping[str, Iterable[BarRecord]]) -> int:
        """:meth:`upsert` of several symbols' bars in as few statements as the chunk size allows
        (a refresh batch stores a hundred symbols' new sessions at once)."""
        rows = [_row(symbol, bar) for symbol, records in bars.items() for bar in records]
        await self._upsert_rows(rows)
        return len(rows)

    async def upsert(self, symbol: str, bars: Iterable[BarRecord]) -> int:
        """Insert or overwrite bars by (symbol, date); returns the number of rows written.

        Re-running an ingest is harmless: the same bars overwrite themselves, and a vendor's
        corrected bar replaces the old one.
        """
        rows = [_row(symbol, bar) for bar in bars]
        await self._upsert_rows(rows)
        return len(rows)

    async def _upsert_rows(self, rows: list[dict[str, object]]) -> None:
        """One statement, compiled once, executed over the rows in chunks (SQLAlchemy batches
        them into multi-row VALUES within each driver's parameter limit). Building a VALUES
        clause per chunk instead was compiled anew every time: a backfill of 50 symbols' ten
        years took 26 s on PostgreSQL, against 3.4 s this way."""
        if not rows:
            return
        statement = dialect_insert(self._session, PriceBar)
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
        for start in range(0, len(rows), _UPSERT_CHUNK):
            await self._session.execute(statement, rows[start : start + _UPSERT_CHUNK])

    async def last_date(self, symbol: str) -> date | None:
        result = await self._session.execute(
            select(func.max(PriceBar.date)).where(PriceBar.symbol == symbol)
        )
        return result.scalar_one_or_none()

    async def last_dates(self, symbols: Collection[str]) -> dict[str, date]:
        """The newest bar's date of each of ``symbols`` that has bars, in one query."""
        if not symbols:
            return {}
        result = await self._session.execute(
            select(PriceBar.symbol, func.max(PriceBar.date))
            .where(PriceBar.symbol.in_(list(symbols)))
            .group_by(PriceBar.symbol)
        )
        return {row[0]: row[1] for row in result}

    async def load_recent(self, symbols: Collection[str], last: int) -> dict[str, list[BarRecord]]:
        """The ``last`` newest bars of each of ``symbols``, ascending, in one query (a window
        function: SQLite 3.25+ and PostgreSQL alike)."""
        if not symbols:
            return {}
        ranked = (
            select(
                PriceBar,
                func.row_number()
                .over(partition_by=PriceBar.symbol, order_by=PriceBar.date.desc())
                .label("rank"),
            )
            .where(PriceBar.symbol.in_(list(symbols)))
            .subquery()
        )
        query = select(ranked).where(ranked.c.rank <= last).order_by(ranked.c.symbol, ranked.c.date)
        loaded: dict[str, list[BarRecord]] = {}
        for row in await self._session.execute(query):
            loaded.setdefault(row.symbol, []).append(_to_record(row))
        return loaded

    async def closes_since(
        self, symbols: Collection[str], since: date
    ) -> dict[str, dict[date, float]]:
        """The closes of ``symbols`` from ``since`` on, by symbol and date, in one query."""
        if not symbols:
            return {}
        result = await self._session.execute(
            select(PriceBar.symbol, PriceBar.date, PriceBar.close).where(
                PriceBar.symbol.in_(list(symbols)), PriceBar.date >= since
            )
        )
        closes: dict[str, dict[date, float]] = {}
        for symbol, day, close in result:
            closes.setdefault(symbol, {})[day] = close
        return closes

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
        query = within_dates(
            select(PriceBar).where(PriceBar.symbol == symbol), PriceBar.date, start, end
        )
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


def _row(symbol: str, bar: BarRecord) -> dict[str, object]:
    return {
        "symbol": symbol,
        "date": bar.date,
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "adj_close": bar.adj_close,
        "volume": bar.volume,
    }


def _to_record(row: Any) -> BarRecord:
    return BarRecord(
        date=row.date,
        open=row.open,
        high=row.high,
        low=row.low,
        close=row.close,
        adj_close=row.adj_close,
        volume=row.volume,
    )
