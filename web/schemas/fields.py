"""Field types with their bounds, shared by every payload and documented once in OpenAPI.

The bounds here are the API's first line of defence (a request outside them is a 422 that touches
nothing); the forecasting configs and the scheduler's tasks check the same bounds again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Final

import msgspec

from forecasting.symbols import SYMBOL_MAX_LENGTH

#: ``forecasting.symbols.SYMBOL_PATTERN`` without the case: the API upper-cases symbols itself,
#: with :func:`forecasting.symbols.normalize_symbol`, before they touch anything.
SYMBOL_INPUT_PATTERN: Final = r"^\^?[A-Za-z0-9][A-Za-z0-9.=\-]{0,14}$"
MODEL_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
MODEL_NAME_MAX_LENGTH: Final = 64

Symbol = Annotated[
    str,
    msgspec.Meta(
        pattern=SYMBOL_INPUT_PATTERN,
        min_length=1,
        max_length=SYMBOL_MAX_LENGTH,
        description="Ticker symbol, Yahoo style (`DIS`, `BRK-B`, `^GSPC`); case-insensitive.",
        examples=["DIS"],
    ),
]
ModelName = Annotated[
    str,
    msgspec.Meta(
        pattern=MODEL_NAME_PATTERN,
        min_length=1,
        max_length=MODEL_NAME_MAX_LENGTH,
        description="A label for a trained model, recorded with its version.",
        examples=["disney_v1"],
    ),
]
Horizon = Annotated[
    int, msgspec.Meta(ge=1, le=30, description="Trading days forecast ahead.", examples=[5])
]
Lookback = Annotated[
    int,
    msgspec.Meta(ge=5, le=500, description="Trading days the model reads.", examples=[60]),
]
Epochs = Annotated[int, msgspec.Meta(ge=1, le=500, description="Training epochs.", examples=[5])]
BatchSize = Annotated[
    int, msgspec.Meta(ge=1, le=4096, description="Training batch size.", examples=[32])
]
Folds = Annotated[
    int, msgspec.Meta(ge=1, le=20, description="Walk-forward backtest folds.", examples=[3])
]


def today_utc() -> date:
    """Today in UTC: the reference for "not in the future" on every host alike."""
    return datetime.now(UTC).date()


def check_past_date(name: str, value: date | None) -> None:
    """Refuse a date after today; raised inside ``__post_init__`` it becomes a 422."""
    if value is not None and value > today_utc():
        raise ValueError(f"{name} {value.isoformat()} is in the future")


def check_date_order(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and end <= start:
        raise ValueError(f"end_date {end.isoformat()} must be after start_date {start.isoformat()}")
