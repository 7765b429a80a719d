"""The global LSTM: one network on several symbols, each with its own scalers fitted on its own
training part only; its artifacts round-trip through safetensors and JSON; warm starts begin
where the champion ended."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
import pytest

from forecasting.config import ModelConfig, TrainConfig
from forecasting.global_model import GLOBAL_KIND, GlobalForecaster, global_warm_start
from forecasting.predictor import LSTMPredictor


@pytest.fixture(scope="module")
def watchlist(synthetic_bars: Callable[..., pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {f"S{k}": synthetic_bars(320, seed=k) for k in range(3)}


@pytest.fixture(scope="module")
def fitted_global(
    watchlist: dict[str, pd.DataFrame],
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
) -> GlobalForecaster:
    return GlobalForecaster(tiny_model_config, tiny_train_config).fit(watchlist)


def _with_wild_future(bars: pd.DataFrame, rows: IndexLike) -> pd.DataFrame:
    """The same bars, with every close after the validation part multiplied by a wild path."""
    changed = bars.copy()
    first = int(rows) + 1
    factor = np.exp(np.linspace(0.0, 3.0, len(changed) - first))
    for column in ("open", "high", "low", "close"):
        changed.loc[first:, column] = changed.loc[first:, column].to_numpy() * factor
    changed.loc[first:, "volume"] = changed.loc[first:, "volume"].to_numpy() * 50.0
    return changed


IndexLike = int | np.integer


def test_one_network_serves_every_symbol_with_its_own_scalers(
    fitted_global: GlobalForecaster, watchlist: dict[str, pd.DataFrame]
) -> None:
    assert fitted_global.symbols == ("S0", "S1", "S2")
    assert fitted_global.training["symbols"] == 3
    # Three symbols' windows were stacked into the one fit.
    one = fitted_global._parts["S0"].windows.train_inputs.shape[0]
    assert fitted_global.training["train_windows"] == pytest.approx(3 * one, abs=3)
    networks = {id(fitted_global.predictor(s).networks[0]) for s in fitted_global.symbols}
    assert len(networks) == 1
    means = {fitted_global.scalers(s).features.mean for s in fitted_global.symbols}
    assert len(means) == 3
    forecast = fitted_global.predictor("S1").predict_log_returns(watchlist["S1"], [300])
    assert forecast.shape == (1, 3) and np.isfinite(forecast).all()


def test_a_symbols_scalers_ignore_its_data_after_the_training_part(
    watchlist: dict[str, pd.DataFrame],
    fitted_global: GlobalForecaster,
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
) -> None:
    last_train = int(fitted_global.training_rows("S1")[-1])
    # Targets of the last training origin end H steps later: change only what comes after.
    changed = dict(watchlist)
    changed["S1"] = _with_wild_future(watchlist["S1"], last_train + tiny_model_config.horizon)
    again = GlobalForecaster(tiny_model_config, tiny_train_config).fit(changed)
    assert again.scalers("S1") == fitted_global.scalers("S1")
    assert again.scalers("S0") == fitted_global.scalers("S0")
    # The same change inside the training part does move them (the test can fail).
    early = dict(watchlist)
    early["S1"] = _with_wild_future(watchlist["S1"], last_train - 100)
    moved = GlobalForecaster(tiny_model_config, tiny_train_config).fit(early)
    assert moved.scalers("S1") != fitted_global.scalers("S1")


def test_a_cutoff_cuts_every_symbol(
    watchlist: dict[str, pd.DataFrame],
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
) -> None:
    cutoff = pd.Timestamp(watchlist["S0"]["date"].iloc[250]).date()
    model = GlobalForecaster(tiny_model_config, tiny_train_config).fit(watchlist, cutoff=cutoff)
    for symbol in model.symbols:
        assert date.fromisoformat(model.to_artifact().metadata["data"][symbol]["end"]) <= cutoff
        # No training target reaches past the cutoff.
        last_target = int(model.training_rows(symbol)[-1]) + tiny_model_config.horizon
        assert last_target <= 250


def test_too_short_symbols_are_skipped(
    watchlist: dict[str, pd.DataFrame],
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
) -> None:
    short = {**watchlist, "TINY": watchlist["S0"].head(40)}
    model = GlobalForecaster(tiny_model_config, tiny_train_config).fit(short)
    assert "TINY" in model.skipped and "TINY" not in model.symbols


def test_artifacts_round_trip_through_safetensors(
    fitted_global: GlobalForecaster, watchlist: dict[str, pd.DataFrame], tmp_path: object
) -> None:
    from pathlib import Path

    from forecasting.artifacts import ModelArtifact

    directory = Path(str(tmp_path)) / "global"
    fitted_global.to_artifact().write_dir(directory)
    assert not list(directory.glob("*.pkl"))
    back = GlobalForecaster.from_artifact(ModelArtifact.read_dir(directory))
    assert back.to_artifact().metadata["model_kind"] == GLOBAL_KIND
    origins = [280, 300]
    for symbol in fitted_global.symbols:
        bars = watchlist[symbol]
        np.testing.assert_array_equal(
            back.predictor(symbol).predict_log_returns(bars, origins),
            fitted_global.predictor(symbol).predict_log_returns(bars, origins),
        )
    # A symbol's view loads as an ordinary LSTM artifact, bit-identical.
    view = LSTMPredictor.from_artifact(fitted_global.symbol_artifact("S2"))
    np.testing.assert_array_equal(
        view.predict_log_returns(watchlist["S2"], origins),
        fitted_global.predictor("S2").predict_log_returns(watchlist["S2"], origins),
    )


def test_a_warm_start_begins_at_the_champions_loss(
    fitted_global: GlobalForecaster,
    watchlist: dict[str, pd.DataFrame],
    tiny_model_config: ModelConfig,
) -> None:
    train = TrainConfig(
        epochs=6, batch_size=32, patience=6, accelerator="cpu", max_history=None, ensemble=1
    )
    champion = GlobalForecaster(tiny_model_config, train).fit(watchlist)
    warm = global_warm_start(champion.to_artifact(), tiny_model_config, epochs=1)
    assert warm is not None
    fine_tuned = GlobalForecaster(tiny_model_config, train, warm_start=warm).fit(watchlist)
    fresh = GlobalForecaster(tiny_model_config, TrainConfig(**{**train.to_dict(), "epochs": 1}))
    fresh.fit(watchlist)
    assert fine_tuned.training["epochs_run"] == 1
    assert fine_tuned.training["first_train_loss"] < fresh.training["first_train_loss"]
    # Its first epoch starts near where the champion's last one ended.
    assert fine_tuned.training["first_train_loss"] < champion.training["first_train_loss"]
    # Another shape starts fresh rather than failing.
    other = ModelConfig(**{**tiny_model_config.to_dict(), "hidden_size": 4})
    assert global_warm_start(champion.to_artifact(), other, epochs=1) is None
