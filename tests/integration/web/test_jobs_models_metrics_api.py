"""``/jobs``, ``/models`` and ``/metrics``."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from typing import Any

from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import JobStatus
from db.repositories import ForecastStepRecord, JobRepository
from forecasting.artifacts import ModelArtifact


def test_jobs_filter_by_symbol_status_and_kind(
    client: TestClient[Any], auth: dict[str, str], db: Any
) -> None:
    client.post("/symbols", json={"symbol": "DIS"}, headers=auth)
    client.post("/symbols", json={"symbol": "KO"}, headers=auth)
    all_jobs = client.get("/jobs").json()
    assert len(all_jobs) == 6
    ko_ingest = next(j for j in all_jobs if j["symbol"] == "KO" and j["kind"] == "ingest")

    async def finish(session: AsyncSession) -> None:
        jobs = JobRepository(session)
        await jobs.mark_running(job_id=ko_ingest["id"], kind="ingest", symbol="KO", worker="w1")
        await jobs.finish(ko_ingest["id"], status=JobStatus.FAILED, error="source down")

    db.run(finish)

    assert {j["symbol"] for j in client.get("/jobs?symbol=dis").json()} == {"DIS"}
    assert [j["kind"] for j in client.get("/jobs?kind=retrain").json()] == ["retrain", "retrain"]
    failed = client.get("/jobs?status=failed").json()
    assert [j["id"] for j in failed] == [ko_ingest["id"]]
    detail = client.get(f"/jobs/{ko_ingest['id']}").json()
    assert (detail["status"], detail["error"], detail["attempts"], detail["worker"]) == (
        "failed",
        "source down",
        1,
        "w1",
    )
    assert detail["finished_at"] is not None
    assert len(client.get("/jobs?limit=2").json()) == 2
    assert len(client.get("/jobs?limit=2&offset=5").json()) == 1


def test_job_errors(client: TestClient[Any]) -> None:
    missing = client.get("/jobs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:stockcast:problem:unknown-job"
    assert client.get("/jobs?status=exploded").status_code == 422
    assert client.get("/jobs?limit=0").status_code == 422
    assert client.get("/jobs?symbol=..%2Fx").status_code == 422
    assert client.get("/jobs/" + "x" * 65).status_code == 422


def test_models_list_and_detail_with_mlflow_links(
    make_client: Callable[..., AbstractContextManager[TestClient[Any]]],
    db: Any,
    tiny_artifact: ModelArtifact,
) -> None:
    old = db.add_model("DIS", tiny_artifact, model_name="first", metrics={"lstm_mase": 1.1})
    new = db.add_model(
        "DIS",
        tiny_artifact,
        model_name="disney_v1",
        metrics={"lstm_mase": 0.9, "lstm_theil_u2": 0.95, "naive_mase": 1.2},
        baseline_metrics={"naive": {"mase": 1.2}, "drift": {"mase": 1.25}},
        mlflow_run_id="abc123",
        registry_name="stockcast-DIS",
        registry_version=2,
    )
    db.add_model("KO", tiny_artifact, champion=False)

    with make_client(mlflow_ui_url="http://mlflow.local:5000/") as client:
        listed = client.get("/models?symbol=DIS").json()
        champions = client.get("/models?status=champion").json()
        detail = client.get(f"/models/{new}").json()
        retired = client.get(f"/models/{old}").json()
        missing = client.get("/models/999999")

    assert [m["id"] for m in listed] == [new, old]
    assert listed[0]["skill"]["mase"] == 0.9
    assert {m["symbol"] for m in champions} == {"DIS"}
    assert (detail["status"], detail["model_name"], detail["kind"]) == (
        "champion",
        "disney_v1",
        "lstm",
    )
    assert detail["metrics"]["lstm_theil_u2"] == 0.95
    assert detail["baseline_metrics"] == {"naive": {"mase": 1.2}, "drift": {"mase": 1.25}}
    assert detail["mlflow"] == {
        "run_id": "abc123",
        "run_url": "http://mlflow.local:5000/#/runs/abc123",
        "registry_name": "stockcast-DIS",
        "registry_version": 2,
        "registry_url": "http://mlflow.local:5000/#/models/stockcast-DIS/versions/2",
    }
    assert retired["status"] == "retired"
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:stockcast:problem:unknown-model"


def test_model_links_are_null_without_an_mlflow_ui(
    client: TestClient[Any], db: Any, tiny_artifact: ModelArtifact
) -> None:
    version = db.add_model("DIS", tiny_artifact, mlflow_run_id="abc123")
    links = client.get(f"/models/{version}").json()["mlflow"]
    assert (links["run_id"], links["run_url"], links["registry_url"]) == ("abc123", None, None)


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$"
    match = re.search(pattern, text, flags=re.MULTILINE)
    assert match is not None, f"{name}{{{wanted}}} not in the metrics"
    return float(match.group(1))


def test_metrics_count_requests_and_read_the_database_at_scrape_time(
    make_client: Callable[..., AbstractContextManager[TestClient[Any]]],
    auth: dict[str, str],
    db: Any,
) -> None:
    issued = datetime.now(UTC).replace(microsecond=0)
    db.add_forecast(
        "DIS",
        [
            ForecastStepRecord(
                step=1,
                target_date=date(2030, 1, 2),
                point=1.0,
                lower_80=0.5,
                upper_80=1.5,
                lower_95=0.4,
                upper_95=1.6,
                naive=1.0,
            )
        ],
        issued_at=issued,
        last_observed_date=date(2029, 12, 31),
        last_close=1.0,
    )
    # Seeded before the app starts, so its forecast.ready does not invalidate the cache later.
    with make_client() as client:
        for _ in range(3):
            client.get("/symbols/DIS/forecast")
        client.get("/symbols/XYZ/forecast")
        client.post("/symbols", json={"symbol": "KO"}, headers=auth)

        response = client.get("/metrics")

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        route = "/symbols/{symbol}/forecast"
        assert (
            _sample(text, "stockcast_http_requests_total", method="GET", route=route, status="200")
            == 3
        )
        assert (
            _sample(text, "stockcast_http_requests_total", method="GET", route=route, status="404")
            == 1
        )
        assert (
            _sample(
                text, "stockcast_http_request_duration_seconds_count", method="GET", route=route
            )
            == 4
        )
        assert 0 <= _sample(text, "stockcast_forecast_age_seconds", quantile="1") < 600
        assert 0 <= _sample(text, "stockcast_oldest_forecast_age_seconds", symbol="DIS") < 600
        assert "\nstockcast_forecasts_stale 0.0\n" in text
        assert _sample(text, "stockcast_jobs", status="queued") == 3
        assert _sample(text, "stockcast_jobs", status="failed") == 0
        assert "stockcast_forecast_cache_hits_total 2.0" in text
        assert "stockcast_forecast_cache_misses_total 2.0" in text  # DIS once, XYZ once


def test_each_app_has_its_own_metrics(
    make_client: Callable[..., AbstractContextManager[TestClient[Any]]],
) -> None:
    with make_client() as first:
        for _ in range(2):
            first.get("/symbols")
        first_text = first.get("/metrics").text
    with make_client() as second:
        second.get("/symbols")
        second_text = second.get("/metrics").text
    labels = {"method": "GET", "route": "/symbols", "status": "200"}
    assert _sample(first_text, "stockcast_http_requests_total", **labels) == 2
    assert _sample(second_text, "stockcast_http_requests_total", **labels) == 1
