"""Where a symbol trades, as the API tells it: its exchange (ISO MIC), the currency of its prices
(ISO 4217) and the time zone of its sessions, and what a price source said otherwise.

The rules are :mod:`forecasting.listings`' (the exchange named or inferred from the ticker, the
currency by exchange, the zone by exchange-calendars). Here they become request errors (a 422 that
names what is wrong) and are computed off the event loop: the first question about an exchange
builds its calendar (a fraction of a second, then cached), and forecasting imports pandas, which
the API does not load at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession

from db.contracts import ListingChecked, decode_payload
from db.kinds import EventType
from db.repositories import EventRepository, SymbolRepository
from web.errors import InvalidRequestError

if TYPE_CHECKING:
    from forecasting.listings import Listing


def resolve_listing(symbol: str, exchange: str | None) -> Listing:
    """The listing of ``symbol`` on ``exchange`` (validated) or on the exchange its ticker names.

    Raises :class:`InvalidRequestError` (a 422) for an unknown exchange code (naming every
    accepted one), a ticker whose exchange cannot be told (an unknown suffix: never taken to be
    New York), or an exchange whose calendar exchange-calendars cannot build here.
    """
    from forecasting.calendar import CalendarUnavailableError
    from forecasting.exchanges import (
        ExchangeInferenceError,
        UnknownExchangeError,
        known_exchanges,
    )
    from forecasting.listings import listing_of

    try:
        return listing_of(symbol, exchange)
    except UnknownExchangeError as exc:
        raise InvalidRequestError(
            "exchange",
            f"unknown exchange {exc.exchange[:20]!r}; accepted codes (ISO MICs of "
            f"exchange-calendars, aliases such as NYSE or XNAS too): {', '.join(known_exchanges())}",
        ) from exc
    except ExchangeInferenceError as exc:
        raise InvalidRequestError("symbol", str(exc)) from exc
    except CalendarUnavailableError as exc:
        raise InvalidRequestError("exchange", str(exc)) from exc


async def listing_for(symbol: str, exchange: str | None) -> Listing:
    """:func:`resolve_listing` in a worker thread."""
    return await anyio.to_thread.run_sync(resolve_listing, symbol, exchange)


async def listings_for(pairs: Iterable[tuple[str, str]]) -> dict[str, Listing]:
    """The listings of stored ``(symbol, exchange)`` pairs, by symbol; a pair whose listing cannot
    be given (an exchange whose calendar no longer builds) is left out rather than failing a read."""

    def work() -> dict[str, Listing]:
        # One calendar question per exchange, however many of its symbols are listed.
        by_exchange: dict[str, Listing | None] = {}
        found: dict[str, Listing] = {}
        for symbol, exchange in pairs:
            if exchange not in by_exchange:
                try:
                    by_exchange[exchange] = resolve_listing(symbol, exchange)
                except InvalidRequestError:
                    by_exchange[exchange] = None
            listing = by_exchange[exchange]
            if listing is not None:
                found[symbol] = replace(listing, symbol=symbol)
        return found

    return await anyio.to_thread.run_sync(work)


async def stored_listing(session: AsyncSession, symbol: str) -> Listing | None:
    """The listing of ``symbol`` as stored on the watchlist (removed symbols keep theirs), else
    the one its ticker names; None when neither can be told (forecast payloads stay readable)."""
    row = await SymbolRepository(session).find(symbol)
    if row is not None:
        return (await listings_for([(symbol, row.exchange)])).get(symbol)

    def inferred() -> Listing | None:
        try:
            return resolve_listing(symbol, None)
        except InvalidRequestError:
            return None

    return await anyio.to_thread.run_sync(inferred)


def listing_fields(listing: Listing | None) -> dict[str, str | None]:
    """``exchange``, ``currency`` and ``timezone`` of a payload (all null without a listing)."""
    if listing is None:
        return {"exchange": None, "currency": None, "timezone": None}
    return {
        "exchange": listing.exchange,
        "currency": listing.currency,
        "timezone": listing.timezone,
    }


def exchange_of_unwatched(symbol: str) -> str:
    """The exchange of a symbol the watchlist never held (trained on demand): the one its ticker
    names (``PETR4.SA``: B3), or a 422 for a ticker whose exchange cannot be told."""
    from forecasting.exchanges import ExchangeInferenceError, infer_exchange

    try:
        return infer_exchange(symbol)
    except ExchangeInferenceError as exc:
        raise InvalidRequestError("symbol", str(exc)) from exc


async def listing_warnings(
    session: AsyncSession, exchanges: Mapping[str, str]
) -> dict[str, list[str]]:
    """What the price source last said about each symbol's listing that differs from it
    (``listing.checked`` events), for symbols still on the exchange they were compared as."""
    latest = await EventRepository(session).latest_by_symbol(
        EventType.LISTING_CHECKED, list(exchanges)
    )
    warnings: dict[str, list[str]] = {}
    for symbol, event in latest.items():
        payload = decode_payload(event.type, event.payload)
        if isinstance(payload, ListingChecked) and payload.exchange == exchanges.get(symbol):
            warnings[symbol] = [note.message for note in payload.disagreements]
    return warnings
