"""Ticker symbols: the one validation every symbol passes before it touches a path, a query or a job."""

from __future__ import annotations

import re
from typing import Final

from forecasting.errors import PortableError

#: Yahoo-style tickers: ``AAPL``, ``BRK-B``, ``PETR4.SA``, ``0700.HK``, ``^GSPC``, ``^BVSP``,
#: ``EURUSD=X``. Upper case only, at most 16 characters with the caret: runs of letters and digits
#: joined by single ``.``, ``-`` or ``=``, so no ``..``, no leading or trailing separator, no slash,
#: no whitespace or control character: nothing that could climb out of a directory or split a
#: file name (``PETR4.SA.csv`` is a name, never a path).
SYMBOL_PATTERN: Final = r"^\^?[A-Z0-9]+(?:[.=\-][A-Z0-9]+)*$"
#: The same rule for input in either case (API schemas), before :func:`normalize_symbol`.
SYMBOL_INPUT_PATTERN: Final = r"^\^?[A-Za-z0-9]+(?:[.=\-][A-Za-z0-9]+)*$"
SYMBOL_MAX_LENGTH: Final = 16
_SYMBOL_RE: Final = re.compile(SYMBOL_PATTERN)


class InvalidSymbolError(PortableError, ValueError):
    """A string that is not an acceptable ticker symbol."""

    def __init__(self, value: str) -> None:
        shown = value if len(value) <= 40 else value[:37] + "..."
        super().__init__(
            f"invalid symbol {shown!r}: expected 1-16 characters of A-Z and 0-9, joined by single "
            "'.', '-' or '=' (optionally starting with '^'), such as AAPL, BRK-B, PETR4.SA or ^BVSP"
        )
        self.value = value


def normalize_symbol(value: str) -> str:
    """Return ``value`` upper-cased and stripped if it is a valid symbol, else raise.

    Every entry point (API, CLI, scheduler task, data source) calls this before using a symbol.
    """
    # ``isprintable``: a control character is refused, not stripped (``"ZZZ\n"`` passed the
    # schema's ``$``, which matches before a final newline, and was registered as ZZZ).
    if not isinstance(value, str) or len(value) > SYMBOL_MAX_LENGTH + 2 or not value.isprintable():
        raise InvalidSymbolError(str(value))
    stripped = value.strip()
    # ASCII first: ``str.upper`` maps some other letters onto ASCII ones (dotless i becomes I).
    candidate = stripped.upper() if stripped.isascii() else ""
    if len(candidate) > SYMBOL_MAX_LENGTH or not _SYMBOL_RE.fullmatch(candidate):
        raise InvalidSymbolError(value)
    return candidate
