"""The model, training and backtest configurations: bounds and JSON round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest

from forecasting.config import BacktestConfig, InvalidConfigError, ModelConfig, TrainConfig


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"horizon": 0}, "horizon"),
        ({"horizon": 31}, "horizon"),
        ({"lookback": 4}, "lookback"),
        ({"lookback": 501}, "lookback"),
        ({"dropout": 1.0}, "dropout"),
        ({"features": ("range",)}, "features"),
        ({"features": ("log_return", "sentiment")}, "features"),
        ({"features": ("log_return", "log_return")}, "features"),
        ({"target": "returns"}, "target"),
        ({"target": "price"}, "features"),
        ({"horizon": True}, "horizon"),
    ],
)
def test_model_config_bounds(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidConfigError, match=rf"ModelConfig\.{field}") as info:
        ModelConfig(**kwargs)
    assert info.value.field_name == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 501}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 4097}, "batch_size"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"val_fraction": 0.9}, "val_fraction"),
        ({"max_history": 10}, "max_history"),
        ({"accelerator": "tpu"}, "accelerator"),
        ({"num_threads": 0}, "num_threads"),
        ({"calibration_fraction": 0.01}, "calibration_fraction"),
        ({"val_fraction": 0.4, "calibration_fraction": 0.4}, "calibration_fraction"),
        ({"ensemble": 0}, "ensemble"),
        ({"ensemble": 11}, "ensemble"),
    ],
)
def test_train_config_bounds(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidConfigError, match=rf"TrainConfig\.{field}"):
        TrainConfig(**kwargs)


def test_backtest_config_bounds() -> None:
    with pytest.raises(InvalidConfigError, match="folds"):
        BacktestConfig(folds=0)
    with pytest.raises(InvalidConfigError, match="test_size"):
        BacktestConfig(test_size=0)


def test_configs_round_trip_through_json() -> None:
    model = ModelConfig(lookback=20, horizon=3, features=("log_return", "volume"), dropout=0.2)
    train = TrainConfig(epochs=7, max_history=None, num_threads=1, ensemble=3)
    backtest = BacktestConfig(folds=2, test_size=50, refit=False)
    assert ModelConfig.from_dict(json.loads(json.dumps(model.to_dict()))) == model
    assert TrainConfig.from_dict(json.loads(json.dumps(train.to_dict()))) == train
    assert BacktestConfig.from_dict(json.loads(json.dumps(backtest.to_dict()))) == backtest


def test_a_stored_model_config_without_a_head_is_a_point_network() -> None:
    assert ModelConfig().head == "student_t"
    stored = {k: v for k, v in ModelConfig().to_dict().items() if k != "head"}
    assert ModelConfig.from_dict(stored).head == "point"
    with pytest.raises(InvalidConfigError, match="head"):
        ModelConfig(head="quantile")


def test_from_dict_refuses_unknown_fields() -> None:
    with pytest.raises(InvalidConfigError, match="unknown field"):
        ModelConfig.from_dict({"lookback": 20, "hidden": 3})


def test_features_list_becomes_a_tuple() -> None:
    config = ModelConfig(features=["log_return", "range"])  # type: ignore[arg-type]
    assert config.features == ("log_return", "range")
    assert hash(config)  # frozen values stay hashable
