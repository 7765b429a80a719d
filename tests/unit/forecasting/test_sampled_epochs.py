"""Sampled epochs: a fit on many windows draws ``windows_per_epoch`` of them per epoch, so the
global model's cost stops growing with the watchlist, while a fit on fewer windows is unchanged;
early stopping scores a fixed validation sample."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecasting.config import InvalidConfigError, ModelConfig, TrainConfig
from forecasting.global_model import GlobalForecaster
from forecasting.limits import WINDOWS_PER_EPOCH
from forecasting.model import validation_sample

EPOCHS = 2


@pytest.fixture(scope="module")
def watchlist(synthetic_bars: Callable[..., pd.DataFrame]) -> dict[str, pd.DataFrame]:
    # Eight symbols of 500 bars: about 2,700 training windows, more than the smallest sample.
    return {f"S{k}": synthetic_bars(500, seed=k) for k in range(8)}


@pytest.fixture(scope="module")
def train_config(tiny_train_config: TrainConfig) -> TrainConfig:
    # Every epoch runs (patience = epochs), so the steps count is the epochs' and nothing else.
    return replace(tiny_train_config, epochs=EPOCHS, patience=EPOCHS)


def test_each_epoch_draws_the_sample_and_not_every_window(
    watchlist: dict[str, pd.DataFrame], tiny_model_config: ModelConfig, train_config: TrainConfig
) -> None:
    per_epoch = WINDOWS_PER_EPOCH.low
    sampled = GlobalForecaster(
        tiny_model_config, replace(train_config, windows_per_epoch=per_epoch)
    ).fit(watchlist)
    full = GlobalForecaster(tiny_model_config, train_config).fit(watchlist)

    windows = full.training["train_windows"]
    assert windows > 2 * per_epoch
    batches = train_config.batch_size
    assert full.training["optimizer_steps"] == EPOCHS * math.ceil(windows / batches)
    assert sampled.training["optimizer_steps"] == EPOCHS * math.ceil(per_epoch / batches)
    assert sampled.training["windows_per_epoch"] == per_epoch
    # Both fitted every symbol, with finite forecasts.
    assert sampled.symbols == full.symbols
    forecast = sampled.predictor("S3").predict_log_returns(watchlist["S3"], [450])
    assert np.isfinite(forecast).all()


def test_a_sample_larger_than_the_windows_changes_nothing(
    watchlist: dict[str, pd.DataFrame], tiny_model_config: ModelConfig, train_config: TrainConfig
) -> None:
    small = {"S0": watchlist["S0"], "S1": watchlist["S1"]}
    plain = GlobalForecaster(tiny_model_config, train_config).fit(small)
    roomy = GlobalForecaster(
        tiny_model_config, replace(train_config, windows_per_epoch=100_000)
    ).fit(small)
    assert roomy.training["optimizer_steps"] == plain.training["optimizer_steps"]
    # Same seed, same windows, same order: the same network.
    assert roomy.training["best_val_loss"] == pytest.approx(plain.training["best_val_loss"])


def test_validation_sample_is_fixed_sorted_and_half_the_epoch() -> None:
    assert np.array_equal(validation_sample(500, None, seed=1), np.arange(500))
    assert np.array_equal(validation_sample(500, 1024, seed=1), np.arange(500))
    rows = validation_sample(10_000, 2048, seed=7)
    assert rows.size == 1024
    assert np.unique(rows).size == 1024
    assert np.all(np.diff(rows) > 0)
    assert rows.min() >= 0 and rows.max() < 10_000
    assert np.array_equal(rows, validation_sample(10_000, 2048, seed=7))
    assert not np.array_equal(rows, validation_sample(10_000, 2048, seed=8))


@pytest.mark.parametrize("value", [0, 1023, 10_000_001, True, 2.5])
def test_a_bad_windows_per_epoch_is_refused(value: object) -> None:
    with pytest.raises(InvalidConfigError, match="windows_per_epoch"):
        TrainConfig(windows_per_epoch=value)  # type: ignore[arg-type]
