"""Queries on the watchlist."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import RetrainCadence, WatchedSymbol

_UPDATABLE = frozenset({"horizon", "lookback", "retrain_cadence", "active", "exchange"})


class SymbolNotFoundError(LookupError):
    """The symbol is not on the watchlist."""

    def __init__(self, symbol: str) -> None:
        super().__init__(f"symbol {symbol!r} is not on the watchlist")
        self.symbol = symbol


class SymbolAlreadyWatchedError(ValueError):
    """The symbol is already on the watchlist (and active)."""

    def __init__(self, symbol: str) -> None:
        super().__init__(f"symbol {symbol!r} is already on the watchlist")
        self.symbol = symbol


class SymbolsNotFoundError(SymbolNotFoundError):
    """Some symbols of a batch are not on the watchlist (all of them named)."""

    def __init__(self, symbols: Sequence[str]) -> None:
        LookupError.__init__(self, f"not on the watchlist: {', '.join(symbols)}")
        self.symbol = symbols[0]
        self.symbols = list(symbols)


class SymbolsAlreadyWatchedError(SymbolAlreadyWatchedError):
    """Some symbols of a batch are already watched (all of them named)."""

    def __init__(self, symbols: Sequence[str]) -> None:
        ValueError.__init__(self, f"already on the watchlist: {', '.join(symbols)}")
        self.symbol = symbols[0]
        self.symbols = list(symbols)


class SymbolRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        *,
        symbol: str,
        exchange: str,
        horizon: int,
        lookback: int,
        retrain_cadence: RetrainCadence = RetrainCadence.WEEKLY,
    ) -> WatchedSymbol:
        """Start watching ``symbol`` (traded on ``exchange``, an exchange-calendars code such as
        ``XNYS``); a symbol removed earlier is re-activated with new settings."""
        existing = await self.find(symbol)
        if existing is not None:
            if existing.active:
                raise SymbolAlreadyWatchedError(symbol)
            existing.active = True
            existing.horizon = horizon
            existing.lookback = lookback
            existing.retrain_cadence = retrain_cadence
            existing.exchange = exchange
            await self._session.flush()
            return existing
        row = WatchedSymbol(
            symbol=symbol,
            horizon=horizon,
            lookback=lookback,
            retrain_cadence=retrain_cadence,
            exchange=exchange,
            active=True,
        )
        self._session.add(row)
        await self._session.flush()
        return row

    async def find_many(self, symbols: Sequence[str]) -> dict[str, WatchedSymbol]:
        """The rows of those of ``symbols`` that exist (watched or removed), by symbol."""
        rows: dict[str, WatchedSymbol] = {}
        for start in range(0, len(symbols), 500):  # bounded IN lists
            chunk = symbols[start : start + 500]
            result = await self._session.execute(
                select(WatchedSymbol).where(WatchedSymbol.symbol.in_(chunk))
            )
            rows.update((row.symbol, row) for row in result.scalars())
        return rows

    async def lock_many(self, symbols: Sequence[str]) -> dict[str, WatchedSymbol]:
        """The rows of ``symbols``, locked until the transaction ends (PostgreSQL; SQLite has one
        writer), in symbol order so that two transactions locking overlapping sets never
        deadlock: a refresh batch holds them while it checks and stores its forecasts, so two runs
        of one batch never both forecast a symbol for the same bar."""
        result = await self._session.execute(
            select(WatchedSymbol)
            .where(WatchedSymbol.symbol.in_(sorted(set(symbols))))
            .order_by(WatchedSymbol.symbol)
            .with_for_update()
        )
        return {row.symbol: row for row in result.scalars()}

    async def active_on(self, exchange: str) -> list[str]:
        """The active symbols of ``exchange``, sorted."""
        result = await self._session.execute(
            select(WatchedSymbol.symbol)
            .where(WatchedSymbol.active.is_(True), WatchedSymbol.exchange == exchange)
            .order_by(WatchedSymbol.symbol)
        )
        return list(result.scalars())

    async def find(self, symbol: str) -> WatchedSymbol | None:
        result = await self._session.execute(
            select(WatchedSymbol).where(WatchedSymbol.symbol == symbol)
        )
        return result.scalar_one_or_none()

    async def get(self, symbol: str, *, active_only: bool = True) -> WatchedSymbol:
        """The symbol's row; removed symbols count as unknown unless ``active_only`` is false."""
        row = await self.find(symbol)
        if row is None or (active_only and not row.active):
            raise SymbolNotFoundError(symbol)
        return row

    async def list(
        self, *, active: bool | None = True, after: str | None = None, limit: int | None = None
    ) -> Sequence[WatchedSymbol]:
        """In symbol order; ``after`` and ``limit`` give one page (keyset: a page stays right
        while symbols are added or removed before it)."""
        query = select(WatchedSymbol).order_by(WatchedSymbol.symbol)
        if active is not None:
            query = query.where(WatchedSymbol.active == active)
        if after is not None:
            query = query.where(WatchedSymbol.symbol > after)
        if limit is not None:
            query = query.limit(limit)
        return (await self._session.execute(query)).scalars().all()

    async def update(self, symbol: str, **changes: Any) -> WatchedSymbol:
        """Change the per-symbol settings named in ``changes``."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise TypeError(f"cannot update {', '.join(sorted(unknown))}")
        row = await self.get(symbol)
        for name, value in changes.items():
            setattr(row, name, value)
        await self._session.flush()
        return row

    async def deactivate(self, symbol: str) -> WatchedSymbol:
        """Stop watching ``symbol``; its prices, models and forecasts stay."""
        row = await self.get(symbol)
        row.active = False
        await self._session.flush()
        return row
