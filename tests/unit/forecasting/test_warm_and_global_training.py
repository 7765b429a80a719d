"""Warm-started retraining starts from the champion's weights and is still gated on
out-of-sample folds; the global retrain trains every symbol's challenger with the global
candidate, and a symbol whose gate picks it is served from the global model's view."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import GlobalCandidate, walk_forward
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.global_model import (
    GlobalFolds,
    GlobalForecaster,
    GlobalSymbolView,
    as_served_by_global,
)
from forecasting.global_training import train_global_challengers
from forecasting.model import LSTMForecaster
from forecasting.predictor import LSTMPredictor
from forecasting.serving import serving_metadata
from forecasting.training import ChallengerOptions, train_challenger

BACKTEST = BacktestConfig(folds=2, test_size=30)
TRAIN = TrainConfig(
    epochs=6, batch_size=32, patience=6, accelerator="cpu", max_history=None, ensemble=1
)


@pytest.fixture(scope="module")
def watchlist(synthetic_bars: Callable[..., pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {f"S{k}": synthetic_bars(420, seed=k) for k in range(3)}


def test_a_warm_retrain_starts_from_the_champion_and_is_gated(
    ko_bars_long: pd.DataFrame, tiny_model_config: ModelConfig
) -> None:
    champion = LSTMForecaster(tiny_model_config, TRAIN).fit(ko_bars_long.head(650))
    configs = {
        "model_config": tiny_model_config,
        "train_config": TRAIN,
        "backtest_config": BACKTEST,
        "policy": "evidence",
        "champion": champion.to_artifact(symbol="KO"),
        "tracking_uri": None,
    }
    warm = train_challenger(
        symbol="KO", bars=ko_bars_long, options=ChallengerOptions(warm_start_epochs=1), **configs
    )
    cold = train_challenger(symbol="KO", bars=ko_bars_long, **configs)
    warm_training = warm.artifact.metadata["training"]
    assert warm_training["warm_start_epochs"] == 1 and warm_training["epochs_run"] == 1
    assert cold.artifact.metadata["training"]["warm_start_epochs"] is None
    # Gated like any challenger, on folds none of whose networks saw their test windows: the
    # first fold trains fresh, the second fine-tunes the first (1 epoch).
    assert [f["lstm_epochs"] for f in warm.backtest["folds"]] == [TRAIN.epochs, 1]
    assert warm.decision.reason
    # The final fit began at the champion's loss, below a fresh network's first epoch.
    fresh = LSTMForecaster(tiny_model_config, replace(TRAIN, epochs=1)).fit(ko_bars_long)
    assert warm.artifact.metadata["training"]["best_val_loss"] < fresh.history[0].val_loss


def test_a_symbol_whose_gate_picks_the_global_lstm_is_served_from_its_view(
    watchlist: dict[str, pd.DataFrame], tiny_model_config: ModelConfig
) -> None:
    folds = GlobalFolds(watchlist, tiny_model_config, TRAIN)
    report = walk_forward(
        watchlist["S0"],
        model_config=tiny_model_config,
        train_config=TRAIN,
        backtest_config=BACKTEST,
        global_candidate=GlobalCandidate(symbol="S0", folds=folds),
    )
    chosen = replace(
        report.decision, promote=True, point="glstm", scale="ewma", selected="glstm+ewma"
    )
    report = replace(report, decision=chosen)
    final = GlobalForecaster(tiny_model_config, TRAIN).fit(watchlist)
    view = GlobalSymbolView(final, "S0")
    serving = serving_metadata(view, watchlist["S0"], as_served_by_global(report))  # type: ignore[arg-type]
    artifact = view.to_artifact(metrics={"x": 1.0}, serving=serving)
    served = LSTMPredictor.from_artifact(artifact)
    assert artifact.metadata["intervals"]["point"] == "lstm"
    assert artifact.metadata["intervals"]["scale_kind"] == "ewma"
    assert artifact.metadata["global"]["symbols"] == 3
    forecast = served.predict(watchlist["S0"])
    assert len(forecast.steps) == tiny_model_config.horizon
    assert all(np.isfinite(s.lower_95) and s.lower_95 < s.upper_95 for s in forecast.steps)
    # The same network and scalers as the global model's own predictor for S0.
    np.testing.assert_array_equal(
        served.predict_log_returns(watchlist["S0"], [400]),
        final.predictor("S0").predict_log_returns(watchlist["S0"], [400]),
    )


def test_the_global_retrain_trains_every_symbol_with_the_global_candidate(
    watchlist: dict[str, pd.DataFrame], tiny_model_config: ModelConfig
) -> None:
    short = {**watchlist, "TINY": watchlist["S0"].head(60)}
    result = train_global_challengers(
        bars_by_symbol=short,
        configs=(tiny_model_config, replace(TRAIN, epochs=2), BACKTEST),
        policy="always",
        champions={},
    )
    assert set(result.outcomes) == {"S0", "S1", "S2"} and "TINY" in result.skipped
    for outcome in result.outcomes.values():
        assert "glstm" in outcome.backtest["points"]
        assert outcome.decision.promote
    assert result.global_training["symbols"] == 3
    # The next run warm starts the global model from a champion that is a view of it.
    view = GlobalForecaster(tiny_model_config, replace(TRAIN, epochs=2)).fit(watchlist)
    again = train_global_challengers(
        bars_by_symbol=watchlist,
        configs=(tiny_model_config, replace(TRAIN, epochs=2), BACKTEST),
        policy="evidence",
        champions={"S0": view.symbol_artifact("S0")},
        warm_start_epochs=1,
    )
    assert again.global_training["warm_start_epochs"] == 1
    assert again.global_training["epochs_run"] == 1
