"""What a source can say about a symbol before any job runs: whether it has it, and its newest bar.

A static source (a CSV directory, the bundled sample, a replay of either) holds a fixed window of
history that does not grow with the wall clock, so a backfill must count its years back from the
newest bar the source has, not from today: counted from 2026, ten years of a sample that ends in
2020 is four years, and of one that ends in 2004 nothing at all. A live source (Yahoo) has bars up
to the last closed session, so for it "today" is the right reference and it needs no method here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Final, Protocol, runtime_checkable

from forecasting.errors import PortableError
from forecasting.sources.base import PriceSource
from forecasting.sources.errors import NoDataError, SourceError, UnknownSymbolError
from forecasting.symbols import normalize_symbol

#: Calendar days a live source is asked for when a symbol is checked: always a few sessions.
LIVE_CHECK_DAYS: Final = 14
#: How many of a static source's symbols an error message lists before it says "and N more".
LISTED_SYMBOLS: Final = 12


@runtime_checkable
class StaticPriceSource(Protocol):
    """A source whose history is a fixed set of files: it can list its symbols and name, without
    a fetch over the network, the newest bar of each."""

    name: str

    def symbols(self) -> list[str]:
        """The symbols this source has bars for, sorted."""
        ...

    def newest_date(self, symbol: str) -> date:
        """The date of ``symbol``'s newest bar; :class:`UnknownSymbolError` when it has none."""
        ...


def newest_bar_date(source: PriceSource, symbol: str) -> date | None:
    """The newest bar a static source has for ``symbol``; ``None`` for a live source.

    Blocking (it may read and validate a file): call it in a worker thread.
    """
    if isinstance(source, StaticPriceSource):
        return source.newest_date(symbol)
    return None


class SymbolUnavailableError(PortableError, LookupError):
    """The source cannot give bars for the symbol, so watching it would only make jobs fail."""

    def __init__(self, symbol: str, *, source: str, reason: str, known: Sequence[str] = ()) -> None:
        message = f"the {source} source has no prices for {symbol} ({reason})"
        if known:
            shown = ", ".join(known[:LISTED_SYMBOLS])
            more = len(known) - LISTED_SYMBOLS
            message += f"; it has {shown}" + (f" and {more} more" if more > 0 else "")
        super().__init__(message)
        self.symbol = symbol
        self.source = source
        self.reason = reason
        self.known = tuple(known)


def check_symbol_available(source: PriceSource, symbol: str, *, today: date) -> None:
    """Refuse ``symbol`` when ``source`` definitely cannot give its bars.

    A static source is asked for its listing and the symbol's newest bar (no network). A live
    source is asked for the last :data:`LIVE_CHECK_DAYS` days before ``today``: an unknown ticker
    or one without recent bars (delisted) is refused. A transient failure (timeout, rate limit,
    network) is raised as it is, for the caller to decide; the API lets the registration through,
    because a source that is down for a minute says nothing about the symbol.

    Blocking: call it in a worker thread.
    """
    wanted = normalize_symbol(symbol)
    if isinstance(source, StaticPriceSource):
        try:
            source.newest_date(wanted)
        except (UnknownSymbolError, NoDataError) as exc:
            raise SymbolUnavailableError(
                wanted, source=source.name, reason=_reason(exc), known=source.symbols()
            ) from exc
        return
    try:
        source.fetch(wanted, today - timedelta(days=LIVE_CHECK_DAYS), None, drop_bad=True)
    except (UnknownSymbolError, NoDataError) as exc:
        raise SymbolUnavailableError(wanted, source=source.name, reason=_reason(exc)) from exc


def _reason(exc: SourceError) -> str:
    if isinstance(exc, UnknownSymbolError):
        return "unknown symbol"
    return "no recent bars"
