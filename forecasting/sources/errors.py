"""The named failures of a price source, split into permanent and transient ones.

The scheduler retries a job later only when ``error.transient`` is true (rate limit, timeout,
network or server trouble); a permanent error (unknown symbol, no data in the range, a corrupt file)
fails the job at once with a message a person can act on.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from forecasting.errors import PortableError


class SourceError(PortableError, Exception):
    """Base of every error a :class:`~forecasting.sources.base.PriceSource` raises on purpose."""

    transient: ClassVar[bool] = False

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source


class UnknownSymbolError(SourceError, LookupError):
    """The source has never heard of this (valid-looking) symbol."""

    def __init__(self, symbol: str, *, source: str) -> None:
        super().__init__(f"{source}: unknown symbol {symbol!r}", source=source)
        self.symbol = symbol


class NoDataError(SourceError):
    """The symbol exists but the source has no bars for it in the requested range."""

    def __init__(
        self, symbol: str, *, source: str, start: date | None = None, end: date | None = None
    ) -> None:
        span = f"{start.isoformat() if start else 'the beginning'} .. {end.isoformat() if end else 'now'}"
        super().__init__(f"{source}: no bars for {symbol} in {span}", source=source)
        self.symbol = symbol
        self.start = start
        self.end = end


class CorruptSourceDataError(SourceError):
    """The source answered, but with something that is not a bars table (a malformed CSV file)."""

    def __init__(self, symbol: str, *, source: str, detail: str) -> None:
        super().__init__(f"{source}: unreadable data for {symbol}: {detail}", source=source)
        self.symbol = symbol
        self.detail = detail


class RateLimitedError(SourceError):
    """The provider asked us to slow down (HTTP 429); retry later."""

    transient: ClassVar[bool] = True

    def __init__(self, *, source: str, detail: str = "too many requests") -> None:
        super().__init__(f"{source}: rate limited ({detail}); retry later", source=source)
        self.detail = detail


class SourceTimeoutError(SourceError, TimeoutError):
    """The provider did not answer within the configured timeout."""

    transient: ClassVar[bool] = True

    def __init__(self, *, source: str, timeout: float) -> None:
        super().__init__(f"{source}: no answer within {timeout:g} s", source=source)
        self.timeout = timeout


class SourceUnavailableError(SourceError):
    """The provider could not be reached or failed on its side (network error, HTTP 5xx)."""

    transient: ClassVar[bool] = True

    def __init__(self, *, source: str, detail: str) -> None:
        super().__init__(f"{source}: unavailable: {detail}", source=source)
        self.detail = detail
