"""The global retrain job's one call: the global LSTM for the whole watchlist, then every symbol's
challenger with it as one more candidate.

1. :class:`~forecasting.global_model.GlobalFolds`: one global network per backtest fold cutoff,
   trained on every symbol's bars before it (shared by all the symbols' backtests).
2. The final global model on all the data, warm started from the champion global network's
   weights when a symbol's champion is a view of it and ``warm_start_epochs`` is set.
3. Per symbol, :func:`forecasting.training.train_challenger` with the global candidate: its gate
   chooses among naive, drift, the per-symbol LSTM and the global LSTM on the same out-of-sample
   windows; a symbol whose gate picks ``glstm`` gets the final global model's view as its
   artifact.

Plain picklable values in and out: the scheduler runs this in a child process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from forecasting.artifacts import ModelArtifact
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.promotion import PromotionPolicy

if TYPE_CHECKING:
    from forecasting.model import WarmStart
    from forecasting.training import TrainingOutcome

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class GlobalOutcome:
    """Each symbol's challenger, the symbols left out (and why), and what the global fits cost."""

    outcomes: dict[str, TrainingOutcome]
    skipped: dict[str, str]
    global_training: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0


def champion_global_warm_start(
    champions: Mapping[str, ModelArtifact | None], model_config: ModelConfig, epochs: int | None
) -> WarmStart | None:
    """The weights of a champion that is a view of the global model (every such view holds the
    same network), as a warm start; None without one or without ``epochs``."""
    from forecasting.warm_start import warm_start_from_artifact

    for artifact in champions.values():
        if artifact is not None and "global" in artifact.metadata:
            return warm_start_from_artifact(artifact, model_config, epochs)
    return None


def train_global_challengers(
    *,
    bars_by_symbol: Mapping[str, pd.DataFrame],
    configs: tuple[ModelConfig, TrainConfig, BacktestConfig],
    policy: PromotionPolicy | str,
    champions: Mapping[str, ModelArtifact | None],
    warm_start_epochs: int | None = None,
    tracking_uri: str | None = None,
    artifact_root: str | None = None,
) -> GlobalOutcome:
    """See the module docstring. A symbol whose challenger cannot be trained (too few bars) is
    listed in ``skipped`` with the reason; the others are not held back by it."""
    from forecasting.backtest import GlobalCandidate
    from forecasting.global_model import GlobalFolds, GlobalForecaster
    from forecasting.training import ChallengerOptions, train_challenger
    from forecasting.windowing import InsufficientDataError

    started = time.perf_counter()
    model_config, train_config, _ = configs
    folds = GlobalFolds(bars_by_symbol, model_config, train_config, warm_epochs=warm_start_epochs)
    warm = champion_global_warm_start(champions, model_config, warm_start_epochs)
    final = GlobalForecaster(model_config, train_config, warm_start=warm).fit(bars_by_symbol)
    outcomes: dict[str, TrainingOutcome] = {}
    skipped = dict(final.skipped)
    for symbol, bars in bars_by_symbol.items():
        if symbol in skipped:
            continue
        options = ChallengerOptions(
            global_candidate=GlobalCandidate(symbol=symbol, folds=folds),
            global_final=final,
            warm_start_epochs=warm_start_epochs,
        )
        try:
            outcomes[symbol] = train_challenger(
                symbol=symbol,
                bars=bars,
                model_config=model_config,
                train_config=train_config,
                backtest_config=configs[2],
                policy=policy,
                champion=champions.get(symbol),
                tracking_uri=tracking_uri,
                artifact_root=artifact_root,
                options=options,
            )
        except InsufficientDataError as exc:
            skipped[symbol] = str(exc)
    training = dict(final.training)
    training["fold_cpu_seconds"] = round(folds.cpu_seconds(), 3)
    return GlobalOutcome(
        outcomes=outcomes,
        skipped=skipped,
        global_training=training,
        seconds=time.perf_counter() - started,
    )
