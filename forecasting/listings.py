"""A symbol's listing (its exchange, the currency of its prices, its exchange's clock) and how it
compares with what a data source reports about the same symbol.

The listing is decided here, from the ticker or an explicit exchange (:mod:`forecasting.exchanges`),
so a symbol is dated and scheduled the same way whichever source serves it. A source that knows
better (yfinance's chart metadata names the exchange, the currency and the time zone) is compared
with it, and each difference comes back as a :class:`ListingDisagreement` to report: a London share
quoted in pence, or a ticker without a suffix that Yahoo places outside New York, is worth telling a
person about, and never a reason to fail an ingest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from forecasting.calendar import exchange_timezone
from forecasting.exchanges import exchange_currency, resolve_exchange
from forecasting.symbols import normalize_symbol

#: Minor units some sources quote prices in, with the ISO 4217 currency they are hundredths of:
#: Yahoo writes London prices in pence (``GBp``), Johannesburg's in cents (``ZAc``), Tel Aviv's
#: in agorot (``ILA``).
MINOR_CURRENCY_UNITS: Final[Mapping[str, str]] = MappingProxyType(
    {"GBp": "GBP", "GBX": "GBP", "ZAc": "ZAR", "ZAC": "ZAR", "ILA": "ILS"}
)

ListingField = Literal["exchange", "currency", "timezone"]


@dataclass(frozen=True, kw_only=True)
class Listing:
    """Where a symbol trades: its exchange (MIC), the currency of its prices (ISO 4217, None when
    the exchange has no single one) and the time zone its sessions are kept in (IANA name)."""

    symbol: str
    exchange: str
    currency: str | None
    timezone: str


@dataclass(frozen=True, kw_only=True)
class ReportedListing:
    """What a source says about a symbol; each field is None when the source does not say.

    ``exchange`` is the MIC the source's own exchange name stands for, when it is known;
    ``exchange_name`` is that name as the source writes it (Yahoo's ``SAO`` for B3), and
    ``currency`` is as the source writes it too (``BRL``, or a minor unit such as ``GBp``).
    """

    exchange: str | None = None
    exchange_name: str | None = None
    currency: str | None = None
    timezone: str | None = None


@dataclass(frozen=True, kw_only=True)
class ListingDisagreement:
    """One field on which the source's report differs from the listing, with a sentence for people."""

    symbol: str
    field: ListingField
    expected: str
    reported: str
    message: str


def listing_of(symbol: str, exchange: str | None = None) -> Listing:
    """The listing of ``symbol``: on ``exchange`` when given (validated), else on the exchange its
    ticker names (:func:`forecasting.exchanges.infer_exchange`, which refuses unknown suffixes)."""
    ticker = normalize_symbol(symbol)
    code = resolve_exchange(ticker, exchange)
    return Listing(
        symbol=ticker,
        exchange=code,
        currency=exchange_currency(code),
        timezone=exchange_timezone(code).key,
    )


def compare_listing(listing: Listing, reported: ReportedListing) -> tuple[ListingDisagreement, ...]:
    """Every difference between ``listing`` and what a source reported; empty when they agree or
    when the source said nothing that can be compared."""
    found = [
        _exchange_disagreement(listing, reported),
        _currency_disagreement(listing, reported),
        _timezone_disagreement(listing, reported),
    ]
    return tuple(item for item in found if item is not None)


def _exchange_disagreement(
    listing: Listing, reported: ReportedListing
) -> ListingDisagreement | None:
    if reported.exchange is None or reported.exchange == listing.exchange:
        return None
    name = f"{reported.exchange_name} ({reported.exchange})" if reported.exchange_name else None
    return ListingDisagreement(
        symbol=listing.symbol,
        field="exchange",
        expected=listing.exchange,
        reported=reported.exchange,
        message=(
            f"{listing.symbol}: the source lists it on {name or reported.exchange}, "
            f"not on {listing.exchange}"
        ),
    )


def _currency_disagreement(
    listing: Listing, reported: ReportedListing
) -> ListingDisagreement | None:
    quoted, expected = reported.currency, listing.currency
    if quoted is None or expected is None or quoted == expected:
        return None
    if MINOR_CURRENCY_UNITS.get(quoted) == expected:
        message = (
            f"{listing.symbol}: the source quotes it in {quoted}, hundredths of {expected}, so "
            f"its prices are 100 times the {expected} amount"
        )
    else:
        message = (
            f"{listing.symbol}: the source quotes it in {quoted}, not in {expected} "
            f"(the currency of {listing.exchange})"
        )
    return ListingDisagreement(
        symbol=listing.symbol, field="currency", expected=expected, reported=quoted, message=message
    )


def _timezone_disagreement(
    listing: Listing, reported: ReportedListing
) -> ListingDisagreement | None:
    if reported.timezone is None or _same_clock(listing.timezone, reported.timezone):
        return None
    return ListingDisagreement(
        symbol=listing.symbol,
        field="timezone",
        expected=listing.timezone,
        reported=reported.timezone,
        message=(
            f"{listing.symbol}: the source keeps its sessions in {reported.timezone}, but "
            f"{listing.exchange} keeps them in {listing.timezone}"
        ),
    )


def _same_clock(ours: str, theirs: str) -> bool:
    """Whether two zone names tell the same time this year, winter and summer: ``Asia/Calcutta``
    and ``Asia/Kolkata`` are one zone under two names."""
    if ours == theirs:
        return True
    try:
        first, second = ZoneInfo(ours), ZoneInfo(theirs)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    year = datetime.now(UTC).year
    instants = [datetime(year, month, 15, 12, tzinfo=UTC) for month in (1, 4, 7, 10)]
    return all(
        instant.astimezone(first).utcoffset() == instant.astimezone(second).utcoffset()
        for instant in instants
    )
