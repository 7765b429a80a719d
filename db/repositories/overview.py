"""The read-only queries behind the dashboard. The watchlist at a glance: each watched symbol's
last close, latest forecast, champion and last job, read in a fixed number of statements however
long the watchlist is; and a symbol's recent next-day forecasts with the closes that followed.

Each "latest" is found with a correlated ``max()`` per watched symbol, which both SQLite and
PostgreSQL answer with one index seek per symbol (``price_bars``' primary key,
``ix_forecasts_symbol_issued_at``, ``ix_job_runs_symbol_created_at``); the rows are then fetched by
their keys. A window function over the tables would read every stored forecast instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ForecastRow, JobRun, ModelStatus, ModelVersion, PriceBar, WatchedSymbol


@dataclass(frozen=True, kw_only=True, slots=True)
class SymbolOverview:
    """One watched symbol with the newest of everything known about it (``None``: none yet)."""

    symbol: WatchedSymbol
    last_bar: PriceBar | None
    #: Every step of the latest forecast, by step (empty if nothing was forecast yet).
    forecast: list[ForecastRow] = field(default_factory=list)
    champion: ModelVersion | None = None
    last_job: JobRun | None = None


class OverviewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def watchlist(self) -> list[SymbolOverview]:
        """Every active symbol, alphabetically, with its latest bar, forecast, champion and job."""
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
        result = await self._session.execute(
            select(
                WatchedSymbol,
                last_bar_date.label("last_bar_date"),
                last_issue.label("last_issue"),
                last_job_at.label("last_job_at"),
            )
            .where(WatchedSymbol.active.is_(True))
            .order_by(WatchedSymbol.symbol)
        )
        heads = result.all()
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
        """Rows of ``model`` whose (symbol, key) is one of ``keys``: one index seek each."""
        if not keys:
            return []
        query = select(model).where(
            or_(*(and_(symbol_column == symbol, key_column == key) for symbol, key in keys))
        )
        if order:
            query = query.order_by(*order)
        return (await self._session.execute(query)).scalars().all()
