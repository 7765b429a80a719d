"""``POST /train`` (queued, never run in the API) and ``POST /predict`` (a real tiny model)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from db.engine import create_sync_db_engine
from forecasting.artifacts import ModelArtifact
from stockcast.schema import head_revision
from web.app import create_app
from web.config import WebConfig

SEED_TRAIN = {
    "model_name": "disney_v1",
    "symbol": "DIS",
    "start_date": "2018-01-01",
    "end_date": "2025-10-30",
    "epochs": 5,
    "batch_size": 32,
    "prediction_steps": 1,
}
SEED_PREDICT = {"model_name": "disney_v1", "symbol": "DIS", "lookback_days": 60}
TOMORROW = (date.today() + timedelta(days=2)).isoformat()


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the request in an empty working directory, to see that it writes no file."""
    directory = tmp_path / "cwd"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def _job_row(url: str, job_id: str) -> dict[str, Any]:
    engine = create_sync_db_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT kind, symbol, status, parameters FROM job_runs WHERE id = :id"),
                {"id": job_id},
            ).one()
            return dict(row._mapping)
    finally:
        engine.dispose()


def _parameters(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


# --------------------------------------------------------------------------- train


def test_train_accepts_the_original_payload_and_queues_a_job(
    client: TestClient[Any], auth: dict[str, str], api_database_url: str, db: Any
) -> None:
    db.watch("DIS")

    response = client.post("/train", json=SEED_TRAIN, headers=auth)

    assert response.status_code == 202
    body = response.json()
    job = body["job"]
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert (body["symbol"], body["model_name"], body["watched"]) == ("DIS", "disney_v1", True)
    expected = {
        "symbol": "DIS",
        "params": {
            "model_name": "disney_v1",
            "start_date": "2018-01-01",
            "end_date": "2025-10-30",
            "epochs": 5,
            "batch_size": 32,
            "horizon": 1,
        },
    }
    assert job["parameters"] == expected
    row = _job_row(api_database_url, job["id"])
    assert (row["kind"], row["symbol"], row["status"]) == ("retrain", "DIS", "queued")
    assert _parameters(row["parameters"]) == expected
    assert db.count("jobs") == 1  # in APScheduler's data store, for a worker to pick up
    assert db.count("model_versions") == 0  # nothing trained here
    assert client.get(response.headers["location"]).json()["status"] == "queued"


def test_train_with_the_new_options_for_an_unwatched_symbol(
    client: TestClient[Any], auth: dict[str, str]
) -> None:
    payload = {
        "symbol": "aapl",
        "model_name": "aapl.h5-v2",
        "horizon": 5,
        "lookback": 30,
        "folds": 2,
        "policy": "beat_champion",
    }
    response = client.post("/train", json=payload, headers=auth)
    assert response.status_code == 202
    body = response.json()
    assert body["watched"] is False
    assert body["job"]["parameters"]["params"] == {
        "model_name": "aapl.h5-v2",
        "horizon": 5,
        "lookback": 30,
        "folds": 2,
        "policy": "beat_champion",
    }
    assert client.get("/symbols").json() == []  # training does not add to the watchlist


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"symbol": "../../etc/passwd"}, id="path-traversal"),
        pytest.param({"symbol": "X" * 10_000}, id="10000-character-symbol"),
        pytest.param({"start_date": "2025-10-30", "end_date": "2018-01-01"}, id="end-before-start"),
        pytest.param({"start_date": "2020-01-01", "end_date": "2020-01-01"}, id="empty-range"),
        pytest.param({"epochs": 0}, id="epochs-0"),
        pytest.param({"epochs": 501}, id="epochs-501"),
        pytest.param({"epochs": 2.5}, id="epochs-fraction"),
        pytest.param({"batch_size": 0}, id="batch-0"),
        pytest.param({"batch_size": 4097}, id="batch-4097"),
        pytest.param({"prediction_steps": 0}, id="steps-0"),
        pytest.param({"prediction_steps": 31}, id="steps-31"),
        pytest.param({"horizon": 2}, id="steps-and-horizon-disagree"),
        pytest.param({"lookback": 4}, id="lookback-4"),
        pytest.param({"lookback": 501}, id="lookback-501"),
        pytest.param({"folds": 21}, id="folds-21"),
        pytest.param({"policy": "yolo"}, id="policy"),
        pytest.param({"model_name": "../model"}, id="model-name-path"),
        pytest.param({"model_name": "m" * 65}, id="model-name-long"),
        pytest.param({"model_name": ""}, id="model-name-empty"),
        pytest.param({"end_date": TOMORROW}, id="end-in-future"),
        pytest.param({"start_date": TOMORROW, "end_date": None}, id="start-in-future"),
        pytest.param({"start_date": "2018-13-01"}, id="not-a-date"),
        pytest.param({"epoch": 5}, id="unknown-field"),
    ],
)
def test_invalid_train_requests_are_422_and_change_nothing(
    client: TestClient[Any],
    auth: dict[str, str],
    db: Any,
    empty_cwd: Path,
    change: dict[str, Any],
) -> None:
    payload = {**SEED_TRAIN, **change}
    payload = {key: value for key, value in payload.items() if value is not None}
    before = db.counts()

    response = client.post("/train", json=payload, headers=auth)

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "urn:stockcast:problem:validation"
    assert problem["errors"], "a 422 says which field failed"
    assert db.counts() == before
    assert list(empty_cwd.iterdir()) == []


def test_train_needs_a_key(client: TestClient[Any], db: Any) -> None:
    response = client.post("/train", json=SEED_TRAIN)
    assert response.status_code == 401
    assert db.count("job_runs") == db.count("jobs") == 0


def test_train_refuses_when_the_task_is_not_configured(
    database_url: str, prices_dir: Path, auth: dict[str, str]
) -> None:
    # A database whose retrain task is gone from APScheduler's data store: enqueueing would make
    # APScheduler invent a task without a function, so the API refuses instead.
    engine = create_sync_db_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM tasks WHERE id = 'retrain'"))
    finally:
        engine.dispose()
    config = WebConfig(
        database_url=database_url,
        expected_revision=head_revision(),
        api_keys=(auth["X-API-Key"],),
        source=f"csv:{prices_dir}",
    )
    with TestClient(create_app(config)) as client:
        response = client.post("/train", json=SEED_TRAIN, headers=auth)
    assert response.status_code == 503
    problem = response.json()
    assert problem["type"] == "urn:stockcast:problem:queue-unavailable"
    assert "stockcast db upgrade" in problem["detail"]


def test_on_demand_endpoints_are_rate_limited(
    make_client: Callable[..., AbstractContextManager[TestClient[Any]]], auth: dict[str, str]
) -> None:
    with make_client(rate_limit_per_minute=2) as client:
        first = client.post("/train", json=SEED_TRAIN, headers=auth)
        assert first.headers["ratelimit-limit"] == "2"
        assert client.post("/predict", json=SEED_PREDICT, headers=auth).status_code == 404
        limited = client.post("/train", json=SEED_TRAIN, headers=auth)
        assert limited.status_code == 429
        assert limited.json()["type"] == "urn:stockcast:problem:rate-limited"
        assert limited.headers["ratelimit-remaining"] == "0"
        assert client.post("/predict", json=SEED_PREDICT, headers=auth).status_code == 429
        # Reads and other writes are not limited.
        assert client.get("/symbols").status_code == 200
        assert client.post("/symbols", json={"symbol": "DIS"}, headers=auth).status_code == 201
        metrics = client.get("/metrics").text
    assert 'route="/train",status="429"' in metrics


# --------------------------------------------------------------------------- predict


@pytest.fixture
def disney(
    db: Any, tiny_artifact: ModelArtifact, bars_of: Callable[..., list[Any]]
) -> dict[str, Any]:
    """DIS watched, a champion named ``disney_v1``, and 40 bars up to 2025-10-01 (the source,
    the shared CSV files, has five more, up to 2025-10-08)."""
    db.watch("DIS")
    db.add_bars("DIS", bars_of("DIS", last=40, until=date(2025, 10, 1)))
    version = db.add_model(
        "DIS", tiny_artifact, model_name="disney_v1", metrics={"lstm_mase": 0.98}
    )
    return {"version": version}


def _predict_directly(artifact: ModelArtifact, bars: list[Any]) -> Any:
    from forecasting.bars import bars_from_fields
    from forecasting.predictor import LSTMPredictor

    return LSTMPredictor.from_artifact(artifact).predict(bars_from_fields(bars))


def test_predict_accepts_the_original_payload(
    client: TestClient[Any],
    auth: dict[str, str],
    db: Any,
    disney: dict[str, Any],
    tiny_artifact: ModelArtifact,
    bars_of: Callable[..., list[Any]],
) -> None:
    bars_before = db.count("price_bars")

    response = client.post("/predict", json=SEED_PREDICT, headers=auth)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["symbol"] == "DIS"
    assert body["model"]["version_id"] == disney["version"]
    assert (body["model"]["model_name"], body["model"]["kind"]) == ("disney_v1", "lstm")
    assert body["model"]["skill"]["mase"] == 0.98
    # The stored bars ended 2025-10-01; the source had five more, which were stored.
    prices = body["prices"]
    assert (prices["refreshed"], prices["new_bars"]) == (True, 5)
    assert prices["last_bar_date"] == "2025-10-08"
    assert db.count("price_bars") == bars_before + 5
    # The data ends in 2025, so it is behind the exchange's last session, and says so.
    assert prices["stale"] is True
    assert "no bars after 2025-10-08" in prices["note"]
    assert body["last_observed_date"] == "2025-10-08"

    expected = _predict_directly(tiny_artifact, bars_of("DIS", until=date(2025, 10, 8), last=40))
    assert body["horizon"] == len(body["steps"]) == 3
    for got, want in zip(body["steps"], expected.steps, strict=True):
        assert got["target_date"] == want.target_date.isoformat()
        assert got["point"] == pytest.approx(want.point, rel=1e-6)
        assert (
            got["lower_95"] <= got["lower_80"] <= got["point"] <= got["upper_80"] <= got["upper_95"]
        )
        assert got["naive"] == pytest.approx(body["last_close"])
    assert 0 < body["inference_ms"] <= body["latency_ms"]
    assert body["model_cached"] is False

    again = client.post("/predict", json={"symbol": "dis"}, headers=auth).json()
    assert again["model_cached"] is True
    assert again["model"]["version_id"] == disney["version"]
    assert again["prices"]["refreshed"] is False
    assert again["steps"] == body["steps"]

    served = client.get("/metrics").text
    assert 'stockcast_inference_seconds_count{model_kind="lstm"} 2.0' in served
    assert 'stockcast_prediction_seconds_count{model_cached="true"} 1.0' in served


def test_predict_records_its_latency_as_an_event(
    client: TestClient[Any], auth: dict[str, str], api_database_url: str, disney: dict[str, Any]
) -> None:
    body = client.post("/predict", json={"symbol": "DIS"}, headers=auth).json()
    engine = create_sync_db_engine(api_database_url)
    try:
        with engine.connect() as connection:
            payload = connection.execute(
                text("SELECT payload FROM events WHERE type = 'prediction.served'")
            ).scalar_one()
    finally:
        engine.dispose()
    recorded = _parameters(payload)
    assert recorded["model_version_id"] == disney["version"]
    assert recorded["latency_ms"] == body["latency_ms"]


def test_predict_trims_the_horizon_and_checks_it_against_the_model(
    client: TestClient[Any], auth: dict[str, str], disney: dict[str, Any]
) -> None:
    two = client.post("/predict", json={"symbol": "DIS", "horizon": 2}, headers=auth)
    assert [step["step"] for step in two.json()["steps"]] == [1, 2]

    too_far = client.post("/predict", json={"symbol": "DIS", "horizon": 5}, headers=auth)
    assert too_far.status_code == 422
    assert "forecasts 3 steps ahead" in too_far.json()["detail"]

    short = client.post("/predict", json={**SEED_PREDICT, "lookback_days": 5}, headers=auth)
    assert short.status_code == 422
    assert "reads 10 trading days" in short.json()["detail"]


def test_predict_without_a_model_is_a_clear_problem(
    client: TestClient[Any], auth: dict[str, str], db: Any, disney: dict[str, Any]
) -> None:
    unknown_name = client.post(
        "/predict", json={**SEED_PREDICT, "model_name": "nope"}, headers=auth
    )
    assert unknown_name.status_code == 404
    assert unknown_name.json()["type"] == "urn:stockcast:problem:unknown-model"

    db.watch("KO")
    no_champion = client.post("/predict", json={"symbol": "KO"}, headers=auth)
    assert no_champion.status_code == 409
    assert no_champion.json()["type"] == "urn:stockcast:problem:no-champion"
    assert "POST /train" in no_champion.json()["detail"]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"symbol": "../../etc/passwd"}, id="path-traversal"),
        pytest.param({"symbol": "D" * 10_000}, id="10000-character-symbol"),
        pytest.param({"symbol": "DIS", "lookback_days": 4}, id="lookback-4"),
        pytest.param({"symbol": "DIS", "lookback_days": 501}, id="lookback-501"),
        pytest.param({"symbol": "DIS", "horizon": 0}, id="horizon-0"),
        pytest.param({"symbol": "DIS", "model_name": "a b"}, id="model-name"),
        pytest.param({"symbol": "DIS", "lookback": 60}, id="unknown-field"),
    ],
)
def test_invalid_predict_requests_are_422_and_change_nothing(
    client: TestClient[Any],
    auth: dict[str, str],
    db: Any,
    disney: dict[str, Any],
    empty_cwd: Path,
    payload: dict[str, Any],
) -> None:
    before = db.counts()
    response = client.post("/predict", json=payload, headers=auth)
    assert response.status_code == 422
    assert db.counts() == before
    assert list(empty_cwd.iterdir()) == []


def test_predict_uses_stored_bars_when_the_source_fails(
    make_client: Callable[..., AbstractContextManager[TestClient[Any]]],
    auth: dict[str, str],
    disney: dict[str, Any],
    tmp_path: Path,
) -> None:
    empty_source = tmp_path / "no-prices"
    empty_source.mkdir()
    with make_client(source=f"csv:{empty_source}") as client:
        response = client.post("/predict", json={"symbol": "DIS"}, headers=auth)
    assert response.status_code == 200
    prices = response.json()["prices"]
    assert (prices["refreshed"], prices["stale"], prices["last_bar_date"]) == (
        False,
        True,
        "2025-10-01",
    )
    assert "failed" in prices["note"]
    assert response.json()["last_observed_date"] == "2025-10-01"


def test_predict_without_enough_bars(
    make_client: Callable[..., AbstractContextManager[TestClient[Any]]],
    auth: dict[str, str],
    db: Any,
    tiny_artifact: ModelArtifact,
    bars_of: Callable[..., list[Any]],
    tmp_path: Path,
) -> None:
    db.add_model("KO", tiny_artifact, model_name="ko")
    db.add_bars("KO", bars_of("KO", last=3))
    down = tmp_path / "down"
    down.mkdir()
    with make_client(source=f"csv:{down}") as client:
        unavailable = client.post("/predict", json={"symbol": "KO"}, headers=auth)
    assert unavailable.status_code == 503
    assert unavailable.json()["type"] == "urn:stockcast:problem:prices-unavailable"
    assert "has 3 stored daily bars" in unavailable.json()["detail"]

    # A source that answers but has no more history than that: a 409, not worth retrying.
    short = tmp_path / "short"
    short.mkdir()
    source_rows = bars_of("KO", last=3)
    (short / "KO.csv").write_text(
        "date,open,high,low,close,adj_close,volume\n"
        + "".join(
            f"{bar.date.isoformat()},{bar.open},{bar.high},{bar.low},{bar.close},,{bar.volume}\n"
            for bar in source_rows
        )
    )
    with make_client(source=f"csv:{short}") as client:
        insufficient = client.post("/predict", json={"symbol": "KO"}, headers=auth)
    assert insufficient.status_code == 409
    assert insufficient.json()["type"] == "urn:stockcast:problem:insufficient-prices"
