"""Path and query parameters shared by the controllers, with their bounds and documentation."""

from __future__ import annotations

from typing import Annotated

from litestar.openapi.spec import Example
from litestar.params import PathParameter, QueryParameter

from forecasting.symbols import SYMBOL_MAX_LENGTH
from web.schemas.fields import SYMBOL_INPUT_PATTERN

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
Limit = Annotated[
    int, QueryParameter(ge=1, le=1000, description="Page size (newest first).", required=False)
]
Offset = Annotated[
    int, QueryParameter(ge=0, le=1_000_000, description="Rows to skip.", required=False)
]
