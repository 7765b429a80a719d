"""The dashboard's own read models: the watchlist at a glance (one page of it, searched), and a
symbol's recent closes and next-day outcomes, each in a fixed number of queries."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories import PriceRepository, SymbolNotFoundError, SymbolRepository
from db.repositories.overview import (
    OverviewRepository,
    SymbolOverview,
    WatchlistCounts,
    WatchlistWindow,
)
from web.schemas.dashboard import (
    ClosePoint,
    NextDayOutcomes,
    RecentCloses,
    WatchlistOverview,
    WatchlistPage,
    next_day_outcome,
    watchlist_entry,
)


class DashboardService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def watchlist(self, window: WatchlistWindow) -> WatchlistOverview:
        """One page of the watchlist (``window.limit`` is required: the page's cost must not grow
        with the watchlist) with where it stands; six statements whatever the page or the list.

        A page before a symbol near the start would be short, and one after the last symbol
        empty (its symbols were removed since the link was made): the first page is shown
        instead, as a reader following a link expects a full page.
        """
        limit = window.limit
        if limit is None:
            raise ValueError("a page of the watchlist needs a limit")
        async with self._sessions() as session:
            overview = OverviewRepository(session)
            items = await overview.watchlist(window)
            if (window.before is not None and len(items) < limit) or (
                window.after is not None and not items
            ):
                window = WatchlistWindow(search=window.search, limit=limit)
                items = await overview.watchlist(window)
            counts = await overview.counts(
                window.search, first=items[0].symbol.symbol if items else None
            )
            entries = [watchlist_entry(item) for item in items]
        return WatchlistOverview(
            generated_at=datetime.now(UTC),
            symbols=entries,
            page=_page(window.search, limit, items, counts),
        )

    async def closes(self, symbol: str, *, count: int) -> RecentCloses:
        """The last ``count`` closes, oldest first; a removed symbol keeps its history."""
        async with self._sessions() as session:
            bars = await PriceRepository(session).load(symbol, last=count)
            if not bars:
                await _known(session, symbol)
        points = [ClosePoint(date=bar.date, close=bar.close) for bar in bars]
        return RecentCloses(symbol=symbol, count=len(points), closes=points)

    async def next_day_outcomes(self, symbol: str, *, count: int) -> NextDayOutcomes:
        """The last ``count`` evaluated next-day forecasts, oldest first."""
        async with self._sessions() as session:
            rows = await OverviewRepository(session).next_day_outcomes(symbol, limit=count)
            if not rows:
                await _known(session, symbol)
        outcomes = [next_day_outcome(row) for row in rows]
        return NextDayOutcomes(symbol=symbol, count=len(outcomes), forecasts=outcomes)


def _page(
    search: str | None, limit: int, items: list[SymbolOverview], counts: WatchlistCounts
) -> WatchlistPage:
    before = counts.before
    more_after = before + len(items) < counts.matching
    return WatchlistPage(
        search=search,
        limit=limit,
        watched=counts.watched,
        matching=counts.matching,
        first=before + 1 if items else 0,
        next_after=items[-1].symbol.symbol if items and more_after else None,
        previous_before=items[0].symbol.symbol if items and before > 0 else None,
    )


async def _known(session: AsyncSession, symbol: str) -> None:
    """Raise :class:`SymbolNotFoundError` (404) for a symbol that was never watched."""
    if await SymbolRepository(session).find(symbol) is None:
        raise SymbolNotFoundError(symbol)
