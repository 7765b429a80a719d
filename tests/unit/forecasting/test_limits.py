"""The ranges of the model settings are declared once and everything checks against them."""

from __future__ import annotations

import pytest

from forecasting.config import BacktestConfig, InvalidConfigError, ModelConfig, TrainConfig
from forecasting.limits import BATCH_SIZE, EPOCHS, FOLDS, HORIZON, LOOKBACK, TEST_SIZE, IntRange


def test_a_range_holds_integers_only_and_its_default() -> None:
    assert 1 in HORIZON and 30 in HORIZON
    assert 0 not in HORIZON and 31 not in HORIZON
    assert True not in HORIZON  # a bool is not a horizon
    assert 5.0 not in HORIZON
    assert HORIZON.describe() == "1 to 30"
    with pytest.raises(ValueError, match="outside"):
        IntRange(low=1, high=3, default=4)


def test_the_configurations_default_to_and_check_the_declared_ranges() -> None:
    model, train, backtest = ModelConfig(), TrainConfig(), BacktestConfig()
    assert (model.horizon, model.lookback) == (HORIZON.default, LOOKBACK.default)
    assert (train.epochs, train.batch_size) == (EPOCHS.default, BATCH_SIZE.default)
    assert (backtest.folds, backtest.test_size) == (FOLDS.default, TEST_SIZE.default)
    ModelConfig(horizon=HORIZON.high, lookback=LOOKBACK.low)
    with pytest.raises(InvalidConfigError, match=r"ModelConfig\.horizon: expected 1 to 30"):
        ModelConfig(horizon=HORIZON.high + 1)
    with pytest.raises(InvalidConfigError, match=r"TrainConfig\.epochs"):
        TrainConfig(epochs=EPOCHS.low - 1)
