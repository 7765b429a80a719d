"""The job and event contracts both sides share: a job's arguments are decoded (and so checked) by
the worker, field by field, and every event payload has one shape."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest

from db.contracts import (
    ARGUMENTS_OF,
    PAYLOAD_OF,
    JobRequest,
    PricesIngested,
    RetrainArguments,
    RetrainParams,
    SymbolArguments,
    SyncSchedulesArguments,
    check_training_period,
    decode_arguments,
    decode_payload,
    to_json,
)
from db.kinds import EventType, JobKind


def test_every_kind_and_every_event_type_has_a_contract() -> None:
    assert set(ARGUMENTS_OF) == set(JobKind)
    assert set(PAYLOAD_OF) == set(EventType)
    assert all(payload.event_type is event_type for event_type, payload in PAYLOAD_OF.items())


def test_retrain_parameters_round_trip_as_json_without_the_unset_ones() -> None:
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
    arguments = decode_arguments(JobKind.RETRAIN, {"symbol": "DIS", "params": raw})
    assert isinstance(arguments, RetrainArguments)
    assert arguments.params.start_date == date(2020, 1, 2)
    assert to_json(arguments) == {"symbol": "DIS", "params": raw}
    assert to_json(RetrainParams()) == {}
    assert JobRequest.retrain("DIS").kwargs == {"symbol": "DIS", "params": {}}


def test_requests_take_their_kinds_arguments_only() -> None:
    assert JobRequest.for_symbol(JobKind.INGEST, "KO").kwargs == {"symbol": "KO"}
    assert JobRequest.sync_schedules("KO").kwargs == {}
    with pytest.raises(TypeError, match="SymbolArguments"):
        JobRequest(kind=JobKind.FORECAST, symbol="KO", arguments=SyncSchedulesArguments())
    with pytest.raises(TypeError, match="RetrainArguments"):
        JobRequest(kind=JobKind.RETRAIN, symbol="KO", arguments=SymbolArguments(symbol="KO"))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"epochs": "10"}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"start_date": "2024-13-01"}, "start_date"),
        ({"end_date": 20240101}, "end_date"),
        ({"model_name": "../../etc"}, "model_name"),
        ({"model_name": "x" * 65}, "model_name"),
        ({"model_name": 7}, "model_name"),
        ({"policy": 1}, "policy"),
        ({"initial": "yes"}, "initial"),
        ({"learning_rate": 0.1}, "learning_rate"),
    ],
)
def test_misshapen_parameters_are_refused_naming_the_field(
    params: dict[str, Any], field: str
) -> None:
    with pytest.raises(msgspec.ValidationError, match=field):
        decode_arguments(JobKind.RETRAIN, {"symbol": "DIS", "params": params})


def test_arguments_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="symbol"):
        decode_arguments(JobKind.INGEST, {})
    with pytest.raises(msgspec.ValidationError, match="params"):
        decode_arguments(JobKind.RETRAIN, {"symbol": "DIS", "params": ["epochs", 3]})
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        decode_arguments(JobKind.SYNC_SCHEDULES, {"symbol": "DIS"})


def test_the_training_period_rule_is_strict_and_refuses_the_future() -> None:
    """One rule for the API and the worker: ``end_date`` strictly after ``start_date``."""
    day = date(2024, 1, 2)
    check_training_period(day, day + timedelta(days=1))
    check_training_period(None, day)
    with pytest.raises(ValueError, match="must be after"):
        check_training_period(day, day)
    with pytest.raises(ValueError, match="must be after"):
        check_training_period(day, day - timedelta(days=1))
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    with pytest.raises(ValueError, match=r"end_date .* is in the future"):
        check_training_period(None, tomorrow)
    raw = {"symbol": "DIS", "params": {"start_date": "2024-01-02", "end_date": "2024-01-02"}}
    with pytest.raises(msgspec.ValidationError, match="must be after"):
        decode_arguments(JobKind.RETRAIN, raw)


def test_prices_ingested_has_one_shape() -> None:
    payload = PricesIngested(
        rows=3,
        first_date=date(2024, 1, 2),
        last_date=date(2024, 1, 4),
        source="csv",
        via="predict",
    )
    stored = to_json(payload)
    assert stored == {
        "rows": 3,
        "first_date": "2024-01-02",
        "last_date": "2024-01-04",
        "source": "csv",
        "via": "predict",
        "full_refresh": False,
        "job_id": None,
    }
    assert decode_payload("prices.ingested", stored) == payload
    with pytest.raises(msgspec.ValidationError, match="first"):
        decode_payload("prices.ingested", {"rows": 3, "first": "2024-01-02", "last": "2024-01-04"})
