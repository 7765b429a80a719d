"""Ticker symbols: the one validation every symbol passes before it touches a path, a query or a job."""

from __future__ import annotations

import re
from typing import Final

#: Yahoo-style tickers: ``AAPL``, ``BRK-B``, ``RDSA.AS``, ``^GSPC``, ``EURUSD=X``. Upper case only,
#: at most 15 characters. No slash, no whitespace, nothing that could climb out of a directory.
SYMBOL_PATTERN: Final = r"^\^?[A-Z0-9][A-Z0-9.=\-]{0,14}$"
SYMBOL_MAX_LENGTH: Final = 16
_SYMBOL_RE: Final = re.compile(SYMBOL_PATTERN)


class InvalidSymbolError(ValueError):
    """A string that is not an acceptable ticker symbol."""

    def __init__(self, value: str) -> None:
        shown = value if len(value) <= 40 else value[:37] + "..."
        super().__init__(
            f"invalid symbol {shown!r}: expected 1-16 characters of A-Z, 0-9, '.', '-', '=' "
            "(optionally starting with '^')"
        )
        self.value = value


def normalize_symbol(value: str) -> str:
    """Return ``value`` upper-cased and stripped if it is a valid symbol, else raise.

    Every entry point (API, CLI, scheduler task, data source) calls this before using a symbol.
    """
    if not isinstance(value, str) or len(value) > SYMBOL_MAX_LENGTH + 2:
        raise InvalidSymbolError(str(value))
    candidate = value.strip().upper()
    if not _SYMBOL_RE.fullmatch(candidate):
        raise InvalidSymbolError(value)
    return candidate
