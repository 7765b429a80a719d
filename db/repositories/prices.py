"""Queries on daily price bars: idempotent upserts and chronological reads."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import UTCDateTime, utcnow
from db.models import PriceBar
from db.repositories._dialect import dialect_insert, is_postgresql, within_dates

_UPSERT_CHUNK = 5000  # rows per execution (bounds the parameter lists held at once)
_ARRAY_CHUNK = 50_000  # rows per unnest statement on PostgreSQL
_BAR_COLUMNS = ("symbol", "date", "open", "high", "low", "close", "adj_close", "volume")
#: The bars upsert on PostgreSQL: the rows as one typed array per column (a fixed text).
_UNNEST_UPSERT = text(
    "INSERT INTO price_bars (symbol, date, open, high, low, close, adj_close, volume, fetched_at) "
    "SELECT symbol, date, open, high, low, close, adj_close, volume, :fetched_at FROM unnest("
    "CAST(:symbol AS text[]), CAST(:date AS date[]), CAST(:open AS float8[]), "
    "CAST(:high AS float8[]), CAST(:low AS float8[]), CAST(:close AS float8[]), "
    "CAST(:adj_close AS float8[]), CAST(:volume AS float8[])"
    ") AS bars(symbol, date, open, high, low, close, adj_close, volume) "
    "ON CONFLICT (symbol, date) DO UPDATE SET open = excluded.open, high = excluded.high, "
    "low = excluded.low, close = excluded.close, adj_close = excluded.adj_close, "
    "volume = excluded.volume, fetched_at = excluded.fetched_at"
).bindparams(bindparam("fetched_at", type_=UTCDateTime()))

#: The newest bar's date per symbol on PostgreSQL (NULL for a symbol without bars).
_PG_LAST_DATES = text(
    "SELECT s.symbol, (SELECT max(b.date) FROM price_bars AS b WHERE b.symbol = s.symbol) "
    "FROM unnest(CAST(:symbols AS text[])) AS s(symbol)"
)
#: The ``:last`` newest bars per symbol on PostgreSQL, ascending within each symbol.
_PG_LOAD_RECENT = text(
    "SELECT b.symbol, b.date, b.open, b.high, b.low, b.close, b.adj_close, b.volume "
    "FROM unnest(CAST(:symbols AS text[])) WITH ORDINALITY AS s(symbol, position) "
    "CROSS JOIN LATERAL (SELECT * FROM price_bars AS p WHERE p.symbol = s.symbol "
    "ORDER BY p.date DESC LIMIT :last) AS b "
    "ORDER BY s.position, b.date"
)


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
        """On PostgreSQL, one ``INSERT ... SELECT FROM unnest(arrays)`` per chunk: the rows
        travel as eight typed arrays and the server unpacks them, so a backfill costs Python
        almost nothing per row (50 symbols' ten years, 126,000 rows: 1.4 s, against 13 s as
        an executemany of the same upsert on the same machine, and 26 s as a VALUES clause
        compiled per chunk). On SQLite, that statement compiled once and executed over the rows
        (an executemany is SQLite's fast path)."""
        if not rows:
            return
        if is_postgresql(self._session):
            await self._upsert_arrays(rows)
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

    async def _upsert_arrays(self, rows: list[dict[str, object]]) -> None:
        now = utcnow()
        for start in range(0, len(rows), _ARRAY_CHUNK):
            chunk = rows[start : start + _ARRAY_CHUNK]
            columns = {name: [row[name] for row in chunk] for name in _BAR_COLUMNS}
            await self._session.execute(_UNNEST_UPSERT, {**columns, "fetched_at": now})

    async def last_date(self, symbol: str) -> date | None:
        result = await self._session.execute(
            select(func.max(PriceBar.date)).where(PriceBar.symbol == symbol)
        )
        return result.scalar_one_or_none()

    async def last_dates(self, symbols: Collection[str]) -> dict[str, date]:
        """The newest bar's date of each of ``symbols`` that has bars, in one query.

        On PostgreSQL, one backward step of the primary key per symbol: a ``GROUP BY`` over an
        ``IN`` list reads every bar of the symbols (a parallel scan of the whole table while it
        has no statistics: 0.2-0.6 s and both cores for 50 symbols of 1,000 bars, against 4 ms).
        SQLite answers the ``GROUP BY`` from the same index."""
        if not symbols:
            return {}
        if is_postgresql(self._session):
            result = await self._session.execute(_PG_LAST_DATES, {"symbols": sorted(set(symbols))})
            return {row[0]: row[1] for row in result if row[1] is not None}
        result = await self._session.execute(
            select(PriceBar.symbol, func.max(PriceBar.date))
            .where(PriceBar.symbol.in_(list(symbols)))
            .group_by(PriceBar.symbol)
        )
        return {row[0]: row[1] for row in result}

    async def load_recent(self, symbols: Collection[str], last: int) -> dict[str, list[BarRecord]]:
        """The ``last`` newest bars of each of ``symbols``, ascending, in one query.

        On PostgreSQL, a ``LATERAL`` index scan of ``last`` rows per symbol; the window function
        SQLite runs (3.25+) numbers and sorts every bar of the symbols first, which on PostgreSQL
        cost 350 ms of the server's CPU for 50 symbols of 1,000 bars, its sort spilled to disk,
        against 55 ms."""
        if not symbols:
            return {}
        if is_postgresql(self._session):
            result = await self._session.execute(
                _PG_LOAD_RECENT, {"symbols": sorted(set(symbols)), "last": last}
            )
        else:
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
            result = await self._session.execute(
                select(ranked).where(ranked.c.rank <= last).order_by(ranked.c.symbol, ranked.c.date)
            )
        loaded: dict[str, list[BarRecord]] = {}
        for row in result:
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
