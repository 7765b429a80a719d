"""Payloads of ``POST /train/global``: the optional settings of one global retrain.

Every field is optional (an empty or absent body trains the whole watchlist with the worker's
defaults). The bounds are the ones ``POST /train`` documents, so a value the worker would refuse
hours later is a 422 here; unknown fields are refused, as everywhere.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from db.contracts import RetrainGlobalParams
from forecasting.limits import EPOCHS, WINDOWS_PER_EPOCH
from forecasting.promotion import PromotionPolicy
from forecasting.symbols import normalize_symbol
from web.schemas.fields import Epochs, Folds, Symbol, bounded
from web.schemas.jobs import QueuedJob

#: The most symbols one request may name: a bound on the body, far above any watchlist it names.
MAX_GLOBAL_SYMBOLS = 10_000

WarmStartEpochs = Annotated[
    int,
    bounded(
        EPOCHS,
        "Fine-tune from each champion's weights with at most this many epochs (later "
        "backtest folds from the previous fold's); absent: train from scratch.",
        3,
    ),
]
WindowsPerEpoch = Annotated[
    int,
    bounded(
        WINDOWS_PER_EPOCH,
        "Training windows drawn afresh each epoch from the pooled watchlist (validation "
        f"scores a fixed sample of half as many); absent: {WINDOWS_PER_EPOCH.default:,}.",
        WINDOWS_PER_EPOCH.default,
    ),
]
GlobalSymbols = Annotated[
    list[Symbol],
    msgspec.Meta(
        min_length=1,
        max_length=MAX_GLOBAL_SYMBOLS,
        description=(
            "Only these watched symbols (default: the whole watchlist). Symbols not on the "
            "watchlist are left out by the job."
        ),
        examples=[["DIS", "KO"]],
    ),
]


class GlobalTrainRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Train one global LSTM on the watched symbols and judge every symbol's challenger with it.

    Each symbol's champion changes only if its challenger passes the promotion gate (``policy``).
    """

    epochs: Epochs | None = None
    folds: Folds | None = None
    warm_start_epochs: WarmStartEpochs | None = None
    policy: PromotionPolicy | None = None
    symbols: GlobalSymbols | None = None
    windows_per_epoch: WindowsPerEpoch | None = None

    def __post_init__(self) -> None:
        if self.symbols is not None:
            # Normalised at the edge, once; a symbol named twice in any spelling counts once.
            unique = list(dict.fromkeys(normalize_symbol(symbol) for symbol in self.symbols))
            msgspec.structs.force_setattr(self, "symbols", unique)

    def params(self) -> RetrainGlobalParams:
        """The ``retrain_global`` job's parameters (unset options are left to the worker)."""
        return RetrainGlobalParams(
            epochs=self.epochs,
            folds=self.folds,
            warm_start_epochs=self.warm_start_epochs,
            policy=self.policy.value if self.policy is not None else None,
            symbols=self.symbols,
            windows_per_epoch=self.windows_per_epoch,
        )


class GlobalTrainAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The global retrain was queued; poll ``job.url`` (or watch ``GET /events``) for it."""

    job: QueuedJob
