"""The ranges and defaults of the settings a user may choose for a model, declared once.

Everything else derives from these values: the configuration checks (:mod:`forecasting.config`),
the API's msgspec constraints and OpenAPI bounds, the ``STOCKCAST_*`` settings, the command line's
help. The one copy that cannot import them is the database's check constraints (``db`` is a leaf
like this package); a test holds those equal to the values here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, kw_only=True, slots=True)
class IntRange:
    """An inclusive integer range with the default a setting takes when it is not given."""

    low: int
    high: int
    default: int

    def __post_init__(self) -> None:
        if not self.low <= self.default <= self.high:
            raise ValueError(f"default {self.default} outside [{self.low}, {self.high}]")

    def __contains__(self, value: object) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )

    def describe(self) -> str:
        """``"1 to 30"``: for messages and help texts."""
        return f"{self.low} to {self.high}"


#: Trading days forecast ahead, each step predicted directly.
HORIZON: Final = IntRange(low=1, high=30, default=5)
#: Trading days of history the network reads.
LOOKBACK: Final = IntRange(low=5, high=500, default=60)
#: Training epochs (early stopping usually ends sooner).
EPOCHS: Final = IntRange(low=1, high=500, default=30)
#: Epochs of the short first training of a newly watched symbol: a model within minutes, the full
#: one at its first scheduled retrain.
FIRST_TRAINING_EPOCHS: Final = 5
#: Windows per optimisation step.
BATCH_SIZE: Final = IntRange(low=1, high=4096, default=64)
#: Training windows drawn per epoch of the global LSTM, whose pooled watchlist (about 1.7 M
#: windows at 1,000 symbols) is far more than one epoch needs: each epoch draws a fresh sample
#: of this many, so the cost of a fit stops growing with the watchlist.
WINDOWS_PER_EPOCH: Final = IntRange(low=1024, high=10_000_000, default=32_768)
#: The global LSTM's epochs unless a request says otherwise (early stopping usually ends sooner).
GLOBAL_EPOCHS: Final = 12
#: Walk-forward backtest folds.
FOLDS: Final = IntRange(low=1, high=20, default=3)
#: Backtest folds of the first training (one is enough to gate it against naive).
FIRST_TRAINING_FOLDS: Final = 1
#: Forecast origins per backtest fold (126 sessions: about half a year).
TEST_SIZE: Final = IntRange(low=1, high=5000, default=126)
