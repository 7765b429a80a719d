"""Watchlist payloads."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, ClassVar
from urllib.parse import quote

import msgspec

from db.models import RetrainCadence, WatchedSymbol
from web.schemas.fields import Horizon, Lookback, Symbol, normalized
from web.schemas.jobs import QueuedJob

if TYPE_CHECKING:
    from forecasting.listings import Listing

Exchange = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=16,
        description=(
            "The exchange the symbol trades on, as an ISO 10383 MIC with a trading calendar in "
            "exchange-calendars (`XNYS`, `BVMF`, `XLON`; aliases such as `NYSE` or `XNAS` too), "
            "case-insensitive. Left out, it is inferred from the ticker: its Yahoo suffix "
            "(`PETR4.SA`: BVMF), a known index (`^FTSE`: XLON), or New York for a plain ticker; "
            "an unknown suffix is refused, never taken to be New York."
        ),
        examples=["BVMF"],
    ),
]


class SymbolCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Start watching a symbol; omitted settings take the server's defaults."""

    symbol: Symbol
    horizon: Horizon | None = None
    lookback: Lookback | None = None
    retrain_cadence: RetrainCadence | None = None
    exchange: Exchange | None = None

    def __post_init__(self) -> None:
        normalized(self)


class SymbolUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Change a watched symbol's settings; they apply from its next forecast and training. A new
    exchange re-registers its schedules on that exchange's calendar and dates its next forecast
    by it."""

    #: An empty change is refused; the OpenAPI document says so (``minProperties``).
    min_fields: ClassVar[int] = 1

    horizon: Horizon | None = None
    lookback: Lookback | None = None
    retrain_cadence: RetrainCadence | None = None
    exchange: Exchange | None = None

    def __post_init__(self) -> None:
        if (
            self.horizon is None
            and self.lookback is None
            and self.retrain_cadence is None
            and self.exchange is None
        ):
            raise ValueError("give at least one of horizon, lookback, retrain_cadence, exchange")

    def changes(self) -> dict[str, object]:
        values = {
            "horizon": self.horizon,
            "lookback": self.lookback,
            "retrain_cadence": self.retrain_cadence,
            "exchange": self.exchange,
        }
        return {name: value for name, value in values.items() if value is not None}


class SymbolOut(msgspec.Struct, frozen=True, kw_only=True):
    """A symbol on (or removed from) the watchlist, with its forecasting settings and listing:
    the exchange it is scheduled and dated on, the currency (ISO 4217) its prices are in and the
    time zone (IANA) of its sessions. ``listing_warnings`` says where the price source's own
    report (yfinance: exchange, currency, zone) differs, as it last said."""

    symbol: str
    exchange: str
    currency: str | None
    timezone: str | None
    horizon: int
    lookback: int
    retrain_cadence: RetrainCadence
    active: bool
    created_at: datetime
    updated_at: datetime
    forecast_url: str
    listing_warnings: list[str] = msgspec.field(default_factory=list)


class SymbolChange(msgspec.Struct, frozen=True, kw_only=True):
    """The symbol after a change, and the jobs the change enqueued."""

    symbol: SymbolOut
    jobs: list[QueuedJob]


#: The most symbols one request registers or removes.
BATCH_LIMIT = 1000

SymbolBatch = Annotated[
    list[SymbolCreate],
    msgspec.Meta(
        min_length=1,
        max_length=BATCH_LIMIT,
        description=f"Up to {BATCH_LIMIT} symbols to watch, each with its own settings.",
    ),
]


class SymbolBatchChange(msgspec.Struct, frozen=True, kw_only=True):
    """The symbols after a change of many, and the jobs it enqueued: one ``sync_schedules`` for
    all of them, and per symbol what a single change would enqueue."""

    symbols: list[SymbolOut]
    jobs: list[QueuedJob]


def symbol_out(
    row: WatchedSymbol, listing: Listing | None, warnings: list[str] | None = None
) -> SymbolOut:
    return SymbolOut(
        symbol=row.symbol,
        exchange=row.exchange,
        currency=listing.currency if listing is not None else None,
        timezone=listing.timezone if listing is not None else None,
        horizon=row.horizon,
        lookback=row.lookback,
        retrain_cadence=RetrainCadence(row.retrain_cadence),
        active=row.active,
        created_at=row.created_at,
        updated_at=row.updated_at,
        forecast_url=f"{symbol_url(row.symbol)}/forecast",
        listing_warnings=list(warnings or []),
    )


def symbol_url(symbol: str) -> str:
    """The path of a symbol's resource (``^GSPC`` is escaped: ``^`` may not appear in a URL)."""
    return f"/symbols/{quote(symbol, safe='')}"
