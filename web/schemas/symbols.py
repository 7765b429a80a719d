"""Watchlist payloads."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import msgspec

from db.models import RetrainCadence, WatchedSymbol
from web.schemas.fields import Horizon, Lookback, Symbol
from web.schemas.jobs import QueuedJob


class SymbolCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Start watching a symbol; omitted settings take the server's defaults."""

    symbol: Symbol
    horizon: Horizon | None = None
    lookback: Lookback | None = None
    retrain_cadence: RetrainCadence | None = None


class SymbolUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Change a watched symbol's settings; they apply from its next forecast and training."""

    horizon: Horizon | None = None
    lookback: Lookback | None = None
    retrain_cadence: RetrainCadence | None = None

    def __post_init__(self) -> None:
        if self.horizon is None and self.lookback is None and self.retrain_cadence is None:
            raise ValueError("give at least one of horizon, lookback, retrain_cadence")

    def changes(self) -> dict[str, object]:
        values = {
            "horizon": self.horizon,
            "lookback": self.lookback,
            "retrain_cadence": self.retrain_cadence,
        }
        return {name: value for name, value in values.items() if value is not None}


class SymbolOut(msgspec.Struct, frozen=True, kw_only=True):
    """A symbol on (or removed from) the watchlist, with its forecasting settings."""

    symbol: str
    exchange: str
    horizon: int
    lookback: int
    retrain_cadence: RetrainCadence
    active: bool
    created_at: datetime
    updated_at: datetime
    forecast_url: str


class SymbolChange(msgspec.Struct, frozen=True, kw_only=True):
    """The symbol after a change, and the jobs the change enqueued."""

    symbol: SymbolOut
    jobs: list[QueuedJob]


def symbol_out(row: WatchedSymbol) -> SymbolOut:
    return SymbolOut(
        symbol=row.symbol,
        exchange=row.exchange,
        horizon=row.horizon,
        lookback=row.lookback,
        retrain_cadence=RetrainCadence(row.retrain_cadence),
        active=row.active,
        created_at=row.created_at,
        updated_at=row.updated_at,
        forecast_url=f"{symbol_url(row.symbol)}/forecast",
    )


def symbol_url(symbol: str) -> str:
    """The path of a symbol's resource (``^GSPC`` is escaped: ``^`` may not appear in a URL)."""
    return f"/symbols/{quote(symbol, safe='')}"
