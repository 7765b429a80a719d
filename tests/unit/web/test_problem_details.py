"""Every failure the API knows becomes an RFC 9457 problem with a stable type, in one place."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient
from sqlalchemy.exc import OperationalError

from db.repositories import SymbolAlreadyWatchedError, SymbolNotFoundError
from forecasting.artifacts import InvalidArtifactError
from forecasting.symbols import InvalidSymbolError
from web.errors import (
    InsufficientPricesError,
    JobQueueUnavailableError,
    MissingApiKeyError,
    NoChampionError,
    NoForecastError,
    PricesUnavailableError,
    TaskNotConfiguredError,
    problem_details_plugin,
)

CASES: list[tuple[Exception, int, str]] = [
    (SymbolNotFoundError("XYZ"), 404, "unknown-symbol"),
    (NoForecastError("DIS", known=True), 404, "no-forecast"),
    (SymbolAlreadyWatchedError("DIS"), 409, "already-watched"),
    (NoChampionError("DIS"), 409, "no-champion"),
    (InvalidArtifactError("weights do not match"), 409, "unusable-model"),
    (InsufficientPricesError("DIS", have=3, need=61), 409, "insufficient-prices"),
    (InvalidSymbolError("../x"), 422, "validation"),
    (MissingApiKeyError(configured=True, supplied=False), 401, "unauthorized"),
    (PricesUnavailableError("DIS", have=3, need=61, reason="timeout"), 503, "prices-unavailable"),
    (JobQueueUnavailableError("database down"), 503, "queue-unavailable"),
    (TaskNotConfiguredError("retrain"), 503, "queue-unavailable"),
]


def _raising(exc: Exception) -> Litestar:
    @get("/boom")
    async def boom() -> None:
        raise exc

    return Litestar([boom], plugins=[problem_details_plugin()])


@pytest.mark.parametrize(("exc", "status", "slug"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_domain_errors_map_to_problems(exc: Exception, status: int, slug: str) -> None:
    with TestClient(_raising(exc)) as client:
        response = client.get("/boom")
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["type"] == f"urn:stockcast:problem:{slug}"
    assert problem["title"]
    assert problem["detail"] == str(exc)
    if status == 401:
        assert response.headers["www-authenticate"] == 'ApiKey header="X-API-Key"'
    if status == 503:
        assert response.headers["retry-after"] == "30"


def test_database_errors_do_not_leak_driver_text() -> None:
    exc = OperationalError("SELECT secret FROM t", {}, Exception("host db.internal refused"))
    with TestClient(_raising(exc)) as client:
        response = client.get("/boom")
    assert response.status_code == 503
    assert response.json()["type"] == "urn:stockcast:problem:database-unavailable"
    assert "db.internal" not in response.text and "SELECT" not in response.text


def test_unexpected_errors_are_500_problems_without_details() -> None:
    with TestClient(_raising(RuntimeError("password=hunter2"))) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json()["type"] == "urn:stockcast:problem:internal"
    assert "hunter2" not in response.text


def test_framework_errors_become_problems_too() -> None:
    with TestClient(_raising(RuntimeError())) as client:
        missing = client.get("/nowhere")
        wrong_method = client.post("/boom")
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:stockcast:problem:not-found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["type"] == "urn:stockcast:problem:method-not-allowed"
