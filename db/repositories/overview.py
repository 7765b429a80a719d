"""The read-only queries behind the dashboard. The watchlist at a glance: each watched symbol's
last close, latest forecast, champion and last job, read in a fixed number of statements however
long the watchlist is; and a symbol's recent next-day forecasts with the closes that followed.

Each "latest" is found with a correlated ``max()`` per watched symbol, which both SQLite and
PostgreSQL answer with one index seek per symbol (``price_bars``' primary key,
``ix_forecasts_symbol_issued_at``, ``ix_job_runs_symbol_created_at``); the rows are then fetched by
their keys. A window function over the tables would read every stored forecast instead.

A long watchlist is read a page at a time (:class:`WatchlistWindow`): the correlated subqueries
then run for that page's symbols only, so a page costs the same with 10 or 1,000 watched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ForecastRow, JobRun, ModelStatus, ModelVersion, PriceBar, WatchedSymbol

#: Keys of one ``symbol IN (...) AND key IN (...)`` statement (see ``_by_keys``).
_KEYS_PER_STATEMENT = 250


@dataclass(frozen=True, kw_only=True, slots=True)
class SymbolOverview:
    """One watched symbol with the newest of everything known about it (``None``: none yet)."""

    symbol: WatchedSymbol
    last_bar: PriceBar | None
    #: Every step of the latest forecast, by step (empty if nothing was forecast yet).
    forecast: list[ForecastRow] = field(default_factory=list)
    champion: ModelVersion | None = None
    last_job: JobRun | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class WatchlistWindow:
    """Which watched symbols to read, in symbol order: those ``search`` matches (a substring of
    the symbol, or the exchange's code exactly; upper case), one keyset page of ``limit`` after
    the symbol ``after`` or before the symbol ``before`` (a page stays right while symbols are
    added or removed elsewhere). The default is every watched symbol."""

    search: str | None = None
    after: str | None = None
    before: str | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.after is not None and self.before is not None:
            raise ValueError("a page starts after a symbol or ends before one, not both")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be positive, not {self.limit}")


@dataclass(frozen=True, kw_only=True, slots=True)
class WatchlistCounts:
    """How many symbols are watched, how many of them a search matches, and how many of those
    come before a page's first symbol (its position, for "51-100 of 1,000")."""

    watched: int
    matching: int
    before: int


def _matches(search: str | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [WatchedSymbol.active.is_(True)]
    if search:
        conditions.append(
            or_(
                # autoescape: a % or _ typed into the search box is a character, not a wildcard.
                WatchedSymbol.symbol.contains(search, autoescape=True),
                WatchedSymbol.exchange == search,
            )
        )
    return conditions


class OverviewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def watchlist(self, window: WatchlistWindow | None = None) -> list[SymbolOverview]:
        """The active symbols of ``window`` (default: all), alphabetically, with their latest
        bar, forecast, champion and job."""
        window = window or WatchlistWindow()
        last_bar_date = (
            select(func.max(PriceBar.date))
            .where(PriceBar.symbol == WatchedSymbol.symbol)
            .correlate(WatchedSymbol)
            .scalar_subquery()
        )
        last_issue = (
            select(func.max(ForecastRow.issued_at))
            .where(ForecastRow.symbol == WatchedSymbol.symbol)
            .correlate(WatchedSymbol)
            .scalar_subquery()
        )
        last_job_at = (
            select(func.max(JobRun.created_at))
            .where(JobRun.symbol == WatchedSymbol.symbol)
            .correlate(WatchedSymbol)
            .scalar_subquery()
        )
        query = select(
            WatchedSymbol,
            last_bar_date.label("last_bar_date"),
            last_issue.label("last_issue"),
            last_job_at.label("last_job_at"),
        ).where(*_matches(window.search))
        if window.before is not None:
            # The page before a symbol: read backwards from it, then put it in order again.
            query = query.where(WatchedSymbol.symbol < window.before).order_by(
                WatchedSymbol.symbol.desc()
            )
        else:
            query = query.order_by(WatchedSymbol.symbol)
            if window.after is not None:
                query = query.where(WatchedSymbol.symbol > window.after)
        if window.limit is not None:
            query = query.limit(window.limit)
        heads = list((await self._session.execute(query)).all())
        if window.before is not None:
            heads.reverse()
        if not heads:
            return []
        symbols = [head[0].symbol for head in heads]
        bars = await self._bars({(h[0].symbol, h.last_bar_date) for h in heads if h.last_bar_date})
        forecasts = await self._forecasts(
            {(h[0].symbol, h.last_issue) for h in heads if h.last_issue is not None}
        )
        jobs = await self._jobs({(h[0].symbol, h.last_job_at) for h in heads if h.last_job_at})
        champions = await self._champions(symbols)
        return [
            SymbolOverview(
                symbol=head[0],
                last_bar=bars.get(head[0].symbol),
                forecast=forecasts.get(head[0].symbol, []),
                champion=champions.get(head[0].symbol),
                last_job=jobs.get(head[0].symbol),
            )
            for head in heads
        ]

    async def counts(self, search: str | None, *, first: str | None) -> WatchlistCounts:
        """The watched symbols, those ``search`` matches, and those of them before ``first``
        (none when ``first`` is ``None``), in one statement."""
        matching = and_(*_matches(search))
        columns = [func.count(), func.count(case((matching, 1)))]
        if first is not None:
            columns.append(func.count(case((and_(matching, WatchedSymbol.symbol < first), 1))))
        row = (
            await self._session.execute(select(*columns).where(WatchedSymbol.active.is_(True)))
        ).one()
        return WatchlistCounts(
            watched=row[0], matching=row[1], before=row[2] if first is not None else 0
        )

    async def next_day_outcomes(self, symbol: str, *, limit: int) -> list[ForecastRow]:
        """The ``limit`` most recent next-day (step 1) forecasts of ``symbol`` whose actual close
        is known, oldest target first: what the chart plots against the closes."""
        result = await self._session.execute(
            select(ForecastRow)
            .where(
                ForecastRow.symbol == symbol,
                ForecastRow.step == 1,
                ForecastRow.actual.is_not(None),
            )
            .order_by(ForecastRow.target_date.desc(), ForecastRow.issued_at.desc())
            .limit(limit)
        )
        return list(reversed(result.scalars().all()))

    async def _bars(self, keys: set[tuple[str, date]]) -> dict[str, PriceBar]:
        rows = await self._by_keys(PriceBar, PriceBar.symbol, PriceBar.date, keys)
        return {row.symbol: row for row in rows}

    async def _forecasts(self, keys: set[tuple[str, datetime]]) -> dict[str, list[ForecastRow]]:
        rows = await self._by_keys(
            ForecastRow, ForecastRow.symbol, ForecastRow.issued_at, keys, ForecastRow.step
        )
        grouped: dict[str, list[ForecastRow]] = {}
        for row in rows:
            grouped.setdefault(row.symbol, []).append(row)
        return grouped

    async def _jobs(self, keys: set[tuple[str, datetime]]) -> dict[str, JobRun]:
        # Jobs enqueued together can share a timestamp; the last id in order wins, consistently.
        rows = await self._by_keys(JobRun, JobRun.symbol, JobRun.created_at, keys, JobRun.id)
        return {row.symbol: row for row in rows if row.symbol is not None}

    async def _champions(self, symbols: Sequence[str]) -> dict[str, ModelVersion]:
        result = await self._session.execute(
            select(ModelVersion).where(
                ModelVersion.symbol.in_(symbols), ModelVersion.status == ModelStatus.CHAMPION
            )
        )
        return {row.symbol: row for row in result.scalars()}

    async def _by_keys(
        self, model: Any, symbol_column: Any, key_column: Any, keys: set[Any], *order: Any
    ) -> Sequence[Any]:
        """Rows of ``model`` whose (symbol, key) is one of ``keys``.

        Asked as ``symbol IN (...) AND key IN (...)``, which both databases answer with index
        seeks on (symbol, key), and the pairs that were not asked for (a symbol's row at another
        symbol's latest time) dropped here. Not ``(symbol = ? AND key = ?) OR ...``: SQLite
        parses that as a tree as deep as the list is long and refuses one over 1,000 deep, and
        building it cost more than the query; not ``(symbol, key) IN (VALUES ...)``, which
        SQLite answers by scanning the table. At most :data:`_KEYS_PER_STATEMENT` keys a
        statement, so a dashboard page (200 symbols at most) is one.
        """
        ordered = sorted(keys)
        rows: list[Any] = []
        for start in range(0, len(ordered), _KEYS_PER_STATEMENT):
            chunk = ordered[start : start + _KEYS_PER_STATEMENT]
            query = select(model).where(
                symbol_column.in_({symbol for symbol, _ in chunk}),
                key_column.in_({key for _, key in chunk}),
            )
            if order:
                query = query.order_by(*order)
            wanted = set(chunk)
            rows.extend(
                row
                for row in (await self._session.execute(query)).scalars()
                if (getattr(row, symbol_column.key), getattr(row, key_column.key)) in wanted
            )
        return rows
