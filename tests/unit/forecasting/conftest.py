"""Shared fixtures of the model tests: real prices, tiny quiet CPU configurations, and one tiny
LSTM fitted once per session (treat it as read-only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from forecasting.bars import conform_bars, read_bars_csv
from forecasting.config import ModelConfig, TrainConfig
from forecasting.sources import SAMPLE_DIRECTORY

if TYPE_CHECKING:
    from forecasting.model import LSTMForecaster


@pytest.fixture(scope="session")
def tiny_model_config() -> ModelConfig:
    return ModelConfig(lookback=10, horizon=3, hidden_size=8, num_layers=1, dropout=0.0)


@pytest.fixture(scope="session")
def tiny_train_config() -> TrainConfig:
    return TrainConfig(
        epochs=3,
        batch_size=32,
        patience=2,
        accelerator="cpu",
        max_history=None,
        progress_bar=False,
        ensemble=1,
    )


#: The bundled sample symbol the model tests fit on; unit tests read nothing outside the
#: repository, so they run on a bare clone.
REAL_BARS_SYMBOL = "GOOG"


def _real_bars(rows: int) -> pd.DataFrame:
    bars = read_bars_csv(str(SAMPLE_DIRECTORY / f"{REAL_BARS_SYMBOL}.csv"))
    return bars.tail(rows).reset_index(drop=True)


@pytest.fixture(scope="session")
def ko_bars() -> pd.DataFrame:
    """The last 400 daily bars of a bundled sample symbol: real data, small enough for
    seconds-long fits. (Named for the Coca-Cola file of the shared test data it once read.)"""
    return _real_bars(400)


@pytest.fixture(scope="session")
def ko_bars_long() -> pd.DataFrame:
    return _real_bars(700)


@pytest.fixture(scope="session")
def fitted_lstm(
    ko_bars: pd.DataFrame, tiny_model_config: ModelConfig, tiny_train_config: TrainConfig
) -> LSTMForecaster:
    # Imported here: Lightning takes seconds to import, and only the model tests need it.
    from forecasting.model import LSTMForecaster

    return LSTMForecaster(tiny_model_config, tiny_train_config).fit(ko_bars)


def _synthetic_bars(rows: int, *, seed: int = 0, start: str = "2020-01-02") -> pd.DataFrame:
    """Business-day bars whose log returns follow a noisy sine: a pattern an LSTM can learn."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    returns = 0.01 * np.sin(t / 3.0) + rng.normal(0.0, 0.001, rows)
    close = 50.0 * np.exp(np.cumsum(returns))
    spread = np.abs(rng.normal(0.0, 0.003, rows)) * close
    frame = pd.DataFrame(
        {
            "date": pd.bdate_range(start, periods=rows),
            "open": close,
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": rng.integers(1_000_000, 2_000_000, rows).astype(float),
        }
    )
    return conform_bars(frame)


@pytest.fixture(scope="session")
def synthetic_bars() -> Callable[..., pd.DataFrame]:
    """A factory: ``synthetic_bars(rows, seed=0)``."""
    return _synthetic_bars
