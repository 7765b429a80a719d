"""Request payloads decode with their bounds: what is accepted, what the job receives, and the
rules that need more than one field."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import msgspec
import pytest

from db.contracts import to_json
from web.schemas.ondemand import PredictRequest, TrainRequest
from web.schemas.symbols import SymbolCreate, SymbolUpdate, symbol_url

ORIGINAL_TRAIN = {
    "model_name": "disney_v1",
    "symbol": "DIS",
    "start_date": "2018-01-01",
    "end_date": "2025-10-30",
    "epochs": 5,
    "batch_size": 32,
    "prediction_steps": 1,
}


def _train(**changes: Any) -> TrainRequest:
    payload = {**ORIGINAL_TRAIN, **changes}
    return msgspec.json.decode(msgspec.json.encode(payload), type=TrainRequest)


def test_the_original_train_payload_becomes_retrain_params() -> None:
    request = _train()
    assert to_json(request.retrain_params()) == {
        "model_name": "disney_v1",
        "start_date": "2018-01-01",
        "end_date": "2025-10-30",
        "epochs": 5,
        "batch_size": 32,
        "horizon": 1,
    }


def test_unset_options_are_left_to_the_task() -> None:
    request = msgspec.json.decode(b'{"symbol": "DIS"}', type=TrainRequest)
    assert to_json(request.retrain_params()) == {}


def test_horizon_and_prediction_steps_may_agree() -> None:
    assert _train(horizon=1).effective_horizon == 1
    assert _train(prediction_steps=None, horizon=7).effective_horizon == 7


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"start_date": "2020-01-02", "end_date": "2020-01-01"}, "must be after start_date"),
        ({"start_date": "2020-01-01", "end_date": "2020-01-01"}, "must be after start_date"),
        ({"end_date": (date.today() + timedelta(days=3)).isoformat()}, "in the future"),
        ({"horizon": 2}, "disagree"),
        ({"epochs": 0}, ">= 1"),
        ({"batch_size": 4097}, "<= 4096"),
        ({"lookback": 501}, "<= 500"),
        ({"folds": 0}, ">= 1"),
        ({"policy": "sometimes"}, "policy"),
        ({"model_name": "-leading-dash"}, "model_name"),
        ({"symbol": "../../etc/passwd"}, "symbol"),
        ({"symbol": "A" * 17}, "length"),
        ({"learning_rate": 0.1}, "unknown field"),
    ],
)
def test_invalid_train_payloads(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        _train(**changes)


def test_the_original_predict_payload() -> None:
    request = msgspec.json.decode(
        b'{"model_name": "disney_v1", "symbol": "DIS", "lookback_days": 60}', type=PredictRequest
    )
    assert (request.model_name, request.symbol, request.lookback_days) == ("disney_v1", "DIS", 60)


@pytest.mark.parametrize(
    "payload",
    [b'{"symbol": "DIS", "lookback_days": 4}', b'{"symbol": "DIS", "horizon": 31}', b"{}"],
)
def test_invalid_predict_payloads(payload: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(payload, type=PredictRequest)


def test_symbol_settings() -> None:
    created = msgspec.json.decode(
        b'{"symbol": "brk-b", "retrain_cadence": "daily"}', type=SymbolCreate
    )
    assert created.retrain_cadence == "daily"
    update = msgspec.json.decode(b'{"lookback": 30}', type=SymbolUpdate)
    assert update.changes() == {"lookback": 30}
    with pytest.raises(msgspec.ValidationError, match="at least one"):
        msgspec.json.decode(b"{}", type=SymbolUpdate)


def test_symbol_urls_escape_the_caret() -> None:
    assert symbol_url("DIS") == "/symbols/DIS"
    assert symbol_url("^GSPC") == "/symbols/%5EGSPC"
