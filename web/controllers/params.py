"""Path and query parameters shared by the controllers, with their bounds and documentation, and
the edge where a symbol from a URL is normalised: the ``symbol_name`` and ``symbol_filter``
dependencies (``forecasting.symbols.normalize_symbol``), so handlers and services only ever see
normalised symbols."""

from __future__ import annotations

from typing import Annotated, Final

from litestar.di import Provide
from litestar.openapi.spec import Example
from litestar.params import PathParameter, QueryParameter

from forecasting.symbols import SYMBOL_INPUT_PATTERN, SYMBOL_MAX_LENGTH, normalize_symbol

SymbolPath = Annotated[
    str,
    PathParameter(
        pattern=SYMBOL_INPUT_PATTERN,
        min_length=1,
        max_length=SYMBOL_MAX_LENGTH,
        description="Ticker symbol (case-insensitive; `^` escaped as `%5E`).",
        examples=[Example(summary="Walt Disney", value="DIS")],
    ),
]
SymbolQuery = Annotated[
    str | None,
    QueryParameter(pattern=SYMBOL_INPUT_PATTERN, max_length=SYMBOL_MAX_LENGTH, required=False),
]
#: The schema of each item of a repeated ``?symbol=`` (Litestar documents a ``list[str]`` query
#: parameter's items as bare strings; the server checks each against the symbol rule).
SYMBOL_ITEMS: Final = {
    "items": {
        "type": "string",
        "pattern": SYMBOL_INPUT_PATTERN,
        "minLength": 1,
        "maxLength": SYMBOL_MAX_LENGTH,
    }
}
Limit = Annotated[
    int, QueryParameter(ge=1, le=1000, description="Page size (newest first).", required=False)
]
Offset = Annotated[
    int, QueryParameter(ge=0, le=1_000_000, description="Rows to skip.", required=False)
]


def symbol_from_path(symbol: SymbolPath) -> str:
    """The ``{symbol}`` of the URL, normalised (``dis`` -> ``DIS``)."""
    return normalize_symbol(symbol)


def symbol_from_query(symbol: SymbolQuery = None) -> str | None:
    """The optional ``?symbol=`` filter, normalised."""
    return normalize_symbol(symbol) if symbol is not None else None


#: ``symbol_name``: the path's symbol, for controllers under ``/.../{symbol}``.
SYMBOL_NAME: Final = {"symbol_name": Provide(symbol_from_path, sync_to_thread=False)}
#: ``symbol_filter``: the ``?symbol=`` filter of a listing.
SYMBOL_FILTER: Final = {"symbol_filter": Provide(symbol_from_query, sync_to_thread=False)}
