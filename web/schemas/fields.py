"""Field types with their bounds, shared by every payload and documented once in OpenAPI.

The bounds are the API's first line of defence (a request outside them is a 422 that touches
nothing). They are not declared here: the ranges come from ``forecasting.limits``, the model name
rule from ``db.contracts``, the symbol rule from ``forecasting.symbols``, the same values the
worker checks again.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from db.contracts import MODEL_NAME_MAX_LENGTH, MODEL_NAME_PATTERN
from forecasting.limits import BATCH_SIZE, EPOCHS, FOLDS, HORIZON, LOOKBACK, IntRange
from forecasting.symbols import SYMBOL_INPUT_PATTERN, SYMBOL_MAX_LENGTH, normalize_symbol

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


def bounded(limits: IntRange, description: str, example: int) -> msgspec.Meta:
    """An integer field's constraints and documentation from its range in ``forecasting.limits``."""
    return msgspec.Meta(ge=limits.low, le=limits.high, description=description, examples=[example])


Horizon = Annotated[int, bounded(HORIZON, "Trading days forecast ahead.", HORIZON.default)]
Lookback = Annotated[int, bounded(LOOKBACK, "Trading days the model reads.", LOOKBACK.default)]
Epochs = Annotated[int, bounded(EPOCHS, "Training epochs.", 5)]
BatchSize = Annotated[int, bounded(BATCH_SIZE, "Training batch size.", 32)]
Folds = Annotated[int, bounded(FOLDS, "Walk-forward backtest folds.", FOLDS.default)]


def normalized(struct: msgspec.Struct, field: str = "symbol") -> None:
    """Normalise a decoded payload's symbol in place (in ``__post_init__``): the edge where a
    symbol from a request body is normalised, once."""
    msgspec.structs.force_setattr(struct, field, normalize_symbol(getattr(struct, field)))
