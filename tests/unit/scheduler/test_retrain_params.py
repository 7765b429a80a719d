"""Retrain parameters are validated by the worker: ranges, dates, names, policies, unknown keys."""

from __future__ import annotations

from datetime import date

import pytest

from forecasting.promotion import PromotionPolicy
from scheduler.params import InvalidRetrainParamsError, RetrainParams


def test_empty_or_missing_params_mean_defaults() -> None:
    assert RetrainParams.from_mapping(None) == RetrainParams()
    assert RetrainParams.from_mapping({}) == RetrainParams()
    assert RetrainParams.from_mapping({"epochs": None}).epochs is None


def test_every_parameter_is_parsed_and_round_trips_as_json() -> None:
    raw = {
        "model_name": "dis-fast_v1.2",
        "start_date": "2020-01-02",
        "end_date": "2024-12-31",
        "epochs": 12,
        "batch_size": 128,
        "horizon": 7,
        "lookback": 90,
        "folds": 4,
        "policy": "beat_champion",
        "initial": True,
    }
    params = RetrainParams.from_mapping(raw)
    assert params.start_date == date(2020, 1, 2)
    assert params.policy is PromotionPolicy.BEAT_CHAMPION
    assert params.to_dict() == raw
    assert RetrainParams.from_mapping(params.to_dict()) == params


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 501}, "epochs"),
        ({"epochs": "10"}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"batch_size": 5000}, "batch_size"),
        ({"horizon": 31}, "horizon"),
        ({"lookback": 4}, "lookback"),
        ({"folds": 21}, "folds"),
        ({"start_date": "2024-13-01"}, "start_date"),
        ({"end_date": 20240101}, "end_date"),
        ({"start_date": "2024-02-01", "end_date": "2024-01-01"}, "start_date"),
        ({"model_name": "../../etc"}, "model_name"),
        ({"model_name": "x" * 65}, "model_name"),
        ({"model_name": 7}, "model_name"),
        ({"policy": "yolo"}, "policy"),
        ({"policy": 1}, "policy"),
        ({"initial": "yes"}, "initial"),
        ({"learning_rate": 0.1}, "learning_rate"),
    ],
)
def test_bad_values_are_refused_naming_the_parameter(raw: dict[str, object], name: str) -> None:
    with pytest.raises(InvalidRetrainParamsError) as caught:
        RetrainParams.from_mapping(raw)
    assert caught.value.name == name
    assert f"'{name}'" in str(caught.value)


def test_params_must_be_an_object() -> None:
    with pytest.raises(InvalidRetrainParamsError, match="expected an object"):
        RetrainParams.from_mapping(["epochs", 3])  # type: ignore[arg-type]
