"""``POST /train/global``: queues one ``retrain_global`` job (never trains in the API), needs a
key, refuses bad settings and a second one while the first is queued or running.

Nothing here trains: the job is seen in APScheduler's data store and in ``job_runs``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from db.engine import create_sync_db_engine

ROUTE = "/train/global"


def _global_jobs(url: str) -> list[dict[str, Any]]:
    """The ``retrain_global`` rows of ``job_runs``, with their parameters decoded."""
    engine = create_sync_db_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT id, symbol, status, parameters FROM job_runs "
                    "WHERE kind = 'retrain_global'"
                )
            ).all()
    finally:
        engine.dispose()
    return [
        {
            **row._mapping,
            "parameters": json.loads(row.parameters)
            if isinstance(row.parameters, str)
            else row.parameters,
        }
        for row in rows
    ]


def _set_status(url: str, job_id: str, status: str) -> None:
    engine = create_sync_db_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE job_runs SET status = :status WHERE id = :id"),
                {"status": status, "id": job_id},
            )
    finally:
        engine.dispose()


def test_queues_one_global_retrain_with_the_given_settings(
    client: TestClient[Any], auth: dict[str, str], api_database_url: str, db: Any
) -> None:
    payload = {
        "epochs": 7,
        "folds": 2,
        "warm_start_epochs": 3,
        "policy": "beat_champion",
        "symbols": ["dis", "KO", "DIS"],
        "windows_per_epoch": 65536,
    }

    response = client.post(ROUTE, json=payload, headers=auth)

    assert response.status_code == 202, response.text
    job = response.json()["job"]
    assert response.headers["location"] == f"/jobs/{job['id']}"
    expected = {
        "params": {
            "epochs": 7,
            "folds": 2,
            "warm_start_epochs": 3,
            "policy": "beat_champion",
            "symbols": ["DIS", "KO"],  # normalised, each once
            "windows_per_epoch": 65536,
        }
    }
    assert (job["kind"], job["symbol"], job["status"]) == ("retrain_global", None, "queued")
    assert job["parameters"] == expected
    [row] = _global_jobs(api_database_url)
    assert (row["id"], row["symbol"], row["status"]) == (job["id"], None, "queued")
    assert row["parameters"] == expected
    assert db.count("jobs") == 1  # in APScheduler's data store, for a worker to pick up
    assert db.count("model_versions") == 0  # nothing trained here
    assert client.get(f"/jobs/{job['id']}").json()["kind"] == "retrain_global"


@pytest.mark.parametrize(
    "request_body",
    [
        pytest.param({}, id="empty-object"),
        pytest.param({"content": b""}, id="no-body"),
        pytest.param({"json": None}, id="null"),
    ],
)
def test_the_body_is_optional(
    client: TestClient[Any],
    auth: dict[str, str],
    api_database_url: str,
    request_body: dict[str, Any],
) -> None:
    response = client.post(ROUTE, headers=auth, **request_body)
    assert response.status_code == 202, response.text
    assert response.json()["job"]["parameters"] == {"params": {}}
    assert [row["parameters"] for row in _global_jobs(api_database_url)] == [{"params": {}}]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"epochs": 0}, id="epochs-0"),
        pytest.param({"epochs": 501}, id="epochs-501"),
        pytest.param({"epochs": 2.5}, id="epochs-fraction"),
        pytest.param({"folds": 0}, id="folds-0"),
        pytest.param({"folds": 21}, id="folds-21"),
        pytest.param({"warm_start_epochs": 0}, id="warm-0"),
        pytest.param({"warm_start_epochs": 501}, id="warm-501"),
        pytest.param({"policy": "yolo"}, id="policy"),
        pytest.param({"windows_per_epoch": 1023}, id="windows-1023"),
        pytest.param({"windows_per_epoch": 10_000_001}, id="windows-too-many"),
        pytest.param({"windows_per_epoch": "all"}, id="windows-not-a-number"),
        pytest.param({"symbols": []}, id="no-symbols"),
        pytest.param({"symbols": "DIS"}, id="symbols-not-a-list"),
        pytest.param({"symbols": ["../../etc/passwd"]}, id="symbol-path"),
        pytest.param({"symbols": ["X" * 100]}, id="symbol-long"),
        pytest.param({"symbols": ["ZZZ\n"]}, id="symbol-newline"),
        pytest.param({"epoch": 5}, id="unknown-field"),
        pytest.param([], id="not-an-object"),
    ],
)
def test_bad_settings_are_422_and_queue_nothing(
    client: TestClient[Any], auth: dict[str, str], db: Any, payload: Any
) -> None:
    before = db.counts()

    response = client.post(ROUTE, json=payload, headers=auth)

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "urn:stockcast:problem:validation"
    assert problem["errors"], "a 422 says which field failed"
    assert db.counts() == before


@pytest.mark.parametrize(
    "headers",
    [pytest.param({}, id="no-key"), pytest.param({"X-API-Key": "x" * 24}, id="wrong-key")],
)
def test_needs_a_key(client: TestClient[Any], db: Any, headers: dict[str, str]) -> None:
    response = client.post(ROUTE, json={"epochs": 3}, headers=headers)
    assert response.status_code == 401
    assert response.json()["type"] == "urn:stockcast:problem:unauthorized"
    assert response.headers["www-authenticate"]
    assert db.count("job_runs") == db.count("jobs") == 0


@pytest.mark.parametrize("status", ["queued", "running"])
def test_a_second_one_is_refused_while_the_first_is_pending(
    client: TestClient[Any],
    auth: dict[str, str],
    api_database_url: str,
    db: Any,
    status: str,
) -> None:
    first = client.post(ROUTE, headers=auth).json()["job"]["id"]
    _set_status(api_database_url, first, status)
    before = db.counts()

    refused = client.post(ROUTE, json={"epochs": 2}, headers=auth)

    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:stockcast:problem:job-pending"
    assert first in problem["detail"]
    assert status in problem["detail"]
    assert db.counts() == before
    assert [row["id"] for row in _global_jobs(api_database_url)] == [first]


@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_another_may_be_queued_once_the_first_has_finished(
    client: TestClient[Any], auth: dict[str, str], api_database_url: str, status: str
) -> None:
    first = client.post(ROUTE, headers=auth).json()["job"]["id"]
    _set_status(api_database_url, first, status)

    second = client.post(ROUTE, headers=auth)

    assert second.status_code == 202, second.text
    assert second.json()["job"]["id"] != first
    assert len(_global_jobs(api_database_url)) == 2


def test_a_pending_per_symbol_retrain_does_not_block_it(
    client: TestClient[Any], auth: dict[str, str], db: Any
) -> None:
    db.watch("DIS")
    assert client.post("/train", json={"symbol": "DIS"}, headers=auth).status_code == 202
    assert client.post(ROUTE, headers=auth).status_code == 202


def test_the_document_says_the_body_is_optional_and_strict(client: TestClient[Any]) -> None:
    document = client.get("/schema/openapi.json").json()
    operation = document["paths"][ROUTE]["post"]
    assert operation["requestBody"]["required"] is False
    assert {"202", "401", "409", "422"} <= set(operation["responses"])
    schema = document["components"]["schemas"]["GlobalTrainRequest"]
    assert schema["additionalProperties"] is False
    [listed] = [s for s in schema["properties"]["symbols"]["oneOf"] if s.get("type") == "array"]
    assert listed["items"]["pattern"]  # each symbol's rule, not any string
