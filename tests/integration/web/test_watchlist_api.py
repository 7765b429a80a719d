"""``/symbols``: registering, reading, changing and removing watched symbols, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from db.engine import create_sync_db_engine

PROBLEM = "application/problem+json"


def _job_runs(url: str) -> list[tuple[str, str | None, str, str]]:
    engine = create_sync_db_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id, symbol, kind, status FROM job_runs ORDER BY created_at, kind")
            )
            return [(row.id, row.symbol, row.kind, row.status) for row in rows]
    finally:
        engine.dispose()


def _event_types(url: str) -> list[str]:
    engine = create_sync_db_engine(url)
    try:
        with engine.connect() as connection:
            return [
                row.type for row in connection.execute(text("SELECT type FROM events ORDER BY id"))
            ]
    finally:
        engine.dispose()


def _queued_task_ids(url: str) -> list[str]:
    """What APScheduler's data store holds: the jobs a scheduler node would pick up."""
    engine = create_sync_db_engine(url)
    try:
        with engine.connect() as connection:
            return sorted(
                row.task_id for row in connection.execute(text("SELECT task_id FROM jobs"))
            )
    finally:
        engine.dispose()


def test_register_creates_the_symbol_and_enqueues_its_first_jobs(
    client: TestClient[Any], auth: dict[str, str], api_database_url: str
) -> None:
    response = client.post("/symbols", json={"symbol": "dis"}, headers=auth)

    assert response.status_code == 201
    assert response.headers["location"] == "/symbols/DIS"
    body = response.json()
    assert body["symbol"]["symbol"] == "DIS"
    assert body["symbol"]["active"] is True
    assert (body["symbol"]["horizon"], body["symbol"]["lookback"]) == (5, 60)  # the defaults
    kinds = [job["kind"] for job in body["jobs"]]
    assert kinds == ["sync_schedules", "ingest", "retrain"]
    retrain = body["jobs"][2]
    assert retrain["parameters"] == {"symbol": "DIS", "params": {"initial": True}}
    assert retrain["url"] == f"/jobs/{retrain['id']}"

    recorded = _job_runs(api_database_url)
    assert {(job_id, kind, status) for job_id, _, kind, status in recorded} == {
        (job["id"], job["kind"], "queued") for job in body["jobs"]
    }
    assert _queued_task_ids(api_database_url) == ["ingest", "retrain", "sync_schedules"]
    assert _event_types(api_database_url) == ["symbol.added"] + ["job.queued"] * 3

    listed = client.get("/symbols").json()
    assert [item["symbol"] for item in listed] == ["DIS"]
    assert client.get("/symbols/dis").json()["symbol"] == "DIS"
    job = client.get(retrain["url"]).json()
    assert (job["kind"], job["status"], job["symbol"]) == ("retrain", "queued", "DIS")


def test_register_with_settings(client: TestClient[Any], auth: dict[str, str]) -> None:
    response = client.post(
        "/symbols",
        json={"symbol": "BRK-B", "horizon": 10, "lookback": 90, "retrain_cadence": "daily"},
        headers=auth,
    )
    assert response.status_code == 201
    symbol = response.json()["symbol"]
    assert (symbol["horizon"], symbol["lookback"], symbol["retrain_cadence"]) == (10, 90, "daily")


def test_a_caret_symbol_gets_an_escaped_location(
    client: TestClient[Any], auth: dict[str, str]
) -> None:
    response = client.post("/symbols", json={"symbol": "^gspc"}, headers=auth)
    assert response.status_code == 201
    assert response.headers["location"] == "/symbols/%5EGSPC"
    assert client.get(response.headers["location"]).json()["symbol"] == "^GSPC"


def test_duplicate_registration_is_409_and_changes_nothing(
    client: TestClient[Any], auth: dict[str, str], db: Any
) -> None:
    assert client.post("/symbols", json={"symbol": "DIS"}, headers=auth).status_code == 201
    before = db.counts()

    response = client.post("/symbols", json={"symbol": "dis", "horizon": 7}, headers=auth)

    assert response.status_code == 409
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"] == "urn:stockcast:problem:already-watched"
    assert "DIS" in problem["detail"]
    assert db.counts() == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param({"symbol": "../../etc/passwd"}, "symbol", id="path-traversal"),
        pytest.param({"symbol": "A" * 10_000}, "symbol", id="10000-characters"),
        pytest.param({"symbol": ""}, "symbol", id="empty"),
        pytest.param({"symbol": "DIS; DROP TABLE symbols"}, "symbol", id="sql"),
        pytest.param({}, "symbol", id="missing"),
        pytest.param({"symbol": "DIS", "horizon": 0}, "horizon", id="horizon-0"),
        pytest.param({"symbol": "DIS", "horizon": 31}, "horizon", id="horizon-31"),
        pytest.param({"symbol": "DIS", "lookback": 4}, "lookback", id="lookback-4"),
        pytest.param({"symbol": "DIS", "lookback": 501}, "lookback", id="lookback-501"),
        pytest.param(
            {"symbol": "DIS", "retrain_cadence": "hourly"}, "retrain_cadence", id="cadence"
        ),
        pytest.param({"symbol": "DIS", "horizont": 5}, None, id="unknown-field"),
        pytest.param({"symbol": 42}, "symbol", id="not-a-string"),
    ],
)
def test_invalid_registration_is_422_and_changes_nothing(
    client: TestClient[Any],
    auth: dict[str, str],
    db: Any,
    payload: dict[str, Any],
    field: str | None,
) -> None:
    before = db.counts()

    response = client.post("/symbols", json=payload, headers=auth)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"] == "urn:stockcast:problem:validation"
    if field is not None:
        assert any(
            error.get("key") == field or f"`{field}`" in error["message"]
            for error in problem["errors"]
        )
    assert db.counts() == before


def test_writes_need_a_valid_key(client: TestClient[Any], api_key: str, db: Any) -> None:
    before = db.counts()
    missing = client.post("/symbols", json={"symbol": "DIS"})
    wrong = client.post("/symbols", json={"symbol": "DIS"}, headers={"X-API-Key": api_key + "x"})
    short = client.post("/symbols", json={"symbol": "DIS"}, headers={"X-API-Key": "a"})

    for response in (missing, wrong, short):
        assert response.status_code == 401
        assert response.json()["type"] == "urn:stockcast:problem:unauthorized"
        assert response.headers["www-authenticate"].startswith("ApiKey")
    assert "needs an API key" in missing.json()["detail"]
    assert "does not hold a valid API key" in wrong.json()["detail"]
    assert client.delete("/symbols/DIS").status_code == 401
    assert client.patch("/symbols/DIS", json={"horizon": 3}).status_code == 401
    assert db.counts() == before
    # Reads stay open by default.
    assert client.get("/symbols").status_code == 200


def test_without_configured_keys_writes_are_refused_with_instructions(
    make_client: Callable[..., AbstractContextManager[TestClient[Any]]], api_key: str, db: Any
) -> None:
    with make_client(api_keys=()) as client:
        response = client.post("/symbols", json={"symbol": "DIS"}, headers={"X-API-Key": api_key})
        assert response.status_code == 401
        assert "STOCKCAST_API_KEYS" in response.json()["detail"]
        assert client.get("/symbols").status_code == 200
    assert db.count("symbols") == 0


def test_reads_need_a_key_when_configured(
    make_client: Callable[..., AbstractContextManager[TestClient[Any]]], auth: dict[str, str]
) -> None:
    with make_client(require_key_for_reads=True) as client:
        assert client.get("/symbols").status_code == 401
        assert client.get("/jobs").status_code == 401
        assert client.get("/symbols", headers=auth).status_code == 200
        # Probes and documentation stay open.
        assert client.get("/health").status_code == 200
        assert client.get("/schema/openapi.json").status_code == 200


def test_unknown_symbol_is_404(client: TestClient[Any], auth: dict[str, str]) -> None:
    for response in (
        client.get("/symbols/XYZ"),
        client.patch("/symbols/XYZ", json={"horizon": 3}, headers=auth),
        client.delete("/symbols/XYZ", headers=auth),
    ):
        assert response.status_code == 404
        assert response.json()["type"] == "urn:stockcast:problem:unknown-symbol"


def test_invalid_symbol_in_the_path_is_422(client: TestClient[Any]) -> None:
    response = client.get("/symbols/" + "A" * 10_000)
    assert response.status_code == 422
    assert client.get("/symbols/a%20b").status_code == 422


def test_patch_changes_settings_and_reschedules_only_for_a_new_cadence(
    client: TestClient[Any], auth: dict[str, str], api_database_url: str
) -> None:
    client.post("/symbols", json={"symbol": "DIS"}, headers=auth)
    jobs_before = len(_job_runs(api_database_url))

    horizon = client.patch("/symbols/DIS", json={"horizon": 10, "lookback": 30}, headers=auth)
    assert horizon.status_code == 200
    assert (horizon.json()["symbol"]["horizon"], horizon.json()["symbol"]["lookback"]) == (10, 30)
    # No champion yet: the naive forecast takes the new horizon at once; the first training,
    # still queued, reads the new settings when it starts.
    assert [job["kind"] for job in horizon.json()["jobs"]] == ["forecast"]
    jobs_before += 1

    cadence = client.patch("/symbols/DIS", json={"retrain_cadence": "monthly"}, headers=auth)
    assert cadence.json()["symbol"]["retrain_cadence"] == "monthly"
    assert [job["kind"] for job in cadence.json()["jobs"]] == ["sync_schedules"]
    assert len(_job_runs(api_database_url)) == jobs_before + 1
    assert _event_types(api_database_url).count("symbol.updated") == 2

    assert client.get("/symbols/DIS").json()["horizon"] == 10
    empty = client.patch("/symbols/DIS", json={}, headers=auth)
    assert empty.status_code == 422
    assert client.patch("/symbols/DIS", json={"horizon": 0}, headers=auth).status_code == 422


def test_delete_stops_watching_keeps_history_and_allows_re_registering(
    client: TestClient[Any], auth: dict[str, str], api_database_url: str, db: Any
) -> None:
    client.post("/symbols", json={"symbol": "DIS"}, headers=auth)

    removed = client.delete("/symbols/DIS", headers=auth)

    assert removed.status_code == 200
    assert removed.json()["symbol"]["active"] is False
    assert [job["kind"] for job in removed.json()["jobs"]] == ["sync_schedules"]
    assert client.get("/symbols").json() == []
    assert [s["symbol"] for s in client.get("/symbols?include_removed=true").json()] == ["DIS"]
    [listed] = client.get("/symbols?include_removed=true").json()
    assert listed["active"] is False
    # Gone from the watchlist, as after any DELETE: reads and a second DELETE are 404s.
    gone = client.get("/symbols/DIS")
    assert gone.status_code == 404
    assert gone.json()["type"] == "urn:stockcast:problem:unknown-symbol"
    assert client.delete("/symbols/DIS", headers=auth).status_code == 404
    assert db.count("symbols") == 1
    assert "symbol.removed" in _event_types(api_database_url)

    again = client.post("/symbols", json={"symbol": "DIS", "horizon": 3}, headers=auth)
    assert again.status_code == 201
    assert again.json()["symbol"]["active"] is True
    assert again.json()["symbol"]["horizon"] == 3
    assert db.count("symbols") == 1


def test_malformed_json_is_a_400_problem(client: TestClient[Any], auth: dict[str, str]) -> None:
    response = client.post(
        "/symbols", content=b"{not json", headers={**auth, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM)


def test_unknown_route_is_a_404_problem(client: TestClient[Any]) -> None:
    response = client.get("/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)


def test_a_symbol_the_source_lacks_is_refused_and_changes_nothing(
    client: TestClient[Any], auth: dict[str, str], db: Any
) -> None:
    before = db.counts()

    response = client.post("/symbols", json={"symbol": "zzzz"}, headers=auth)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"] == "urn:stockcast:problem:validation"
    assert problem["detail"].startswith("symbol: ")
    assert "ZZZZ" in problem["detail"] and "AAPL" in problem["detail"]
    assert db.counts() == before
    assert client.get("/symbols/ZZZZ").status_code == 404


def _champion_of_shape(db: Any, artifact: Any, symbol: str, *, horizon: int, lookback: int) -> None:
    from db.repositories import ModelVersionRepository, NewModelVersion

    async def work(session: Any) -> None:
        repository = ModelVersionRepository(session)
        row = await repository.add(
            NewModelVersion(
                symbol=symbol,
                weights=artifact.weights,
                metadata=artifact.metadata,
                params={"model": {"horizon": horizon, "lookback": lookback}},
            )
        )
        await repository.promote(row.id)

    db.run(work)


def test_patch_of_the_shape_queues_a_forecast_and_a_retrain_of_the_new_shape(
    client: TestClient[Any],
    auth: dict[str, str],
    db: Any,
    tiny_artifact: Any,
    api_database_url: str,
) -> None:
    db.watch("SPY", horizon=5, lookback=60)
    _champion_of_shape(db, tiny_artifact, "SPY", horizon=5, lookback=60)

    same = client.patch("/symbols/SPY", json={"horizon": 5, "lookback": 60}, headers=auth)
    assert same.status_code == 200 and same.json()["jobs"] == []  # nothing changed

    longer = client.patch("/symbols/SPY", json={"horizon": 10}, headers=auth)
    assert longer.status_code == 200
    jobs = longer.json()["jobs"]
    assert [job["kind"] for job in jobs] == ["forecast", "retrain"]
    assert jobs[1]["parameters"] == {"symbol": "SPY", "params": {}}
    assert {(job_id, kind) for job_id, _, kind, _ in _job_runs(api_database_url)} == {
        (job["id"], job["kind"]) for job in jobs
    }
    assert _queued_task_ids(api_database_url) == ["forecast", "retrain"]

    # A retraining already queued will read the new lookback: only the forecast is added.
    again = client.patch("/symbols/SPY", json={"lookback": 90}, headers=auth)
    assert [job["kind"] for job in again.json()["jobs"]] == ["forecast"]


def test_a_batch_with_a_symbol_the_source_lacks_is_refused_whole(
    client: TestClient[Any], auth: dict[str, str], db: Any
) -> None:
    before = db.counts()
    response = client.post(
        "/symbols",
        json=[{"symbol": "SPY"}, {"symbol": "ZZZZ"}, {"symbol": "QQQQ"}],
        headers=auth,
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "QQQQ" in detail and "ZZZZ" in detail and "SPY" not in detail.split("it has")[0]
    assert db.counts() == before
