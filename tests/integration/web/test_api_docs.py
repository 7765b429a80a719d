"""The OpenAPI document describes every route, and Swagger UI works without a network."""

from __future__ import annotations

import re
from typing import Any

from litestar.testing import TestClient

OUR_ROUTES = {
    ("post", "/symbols"): {201, 401, 409, 422},
    ("get", "/symbols"): {200},
    ("get", "/symbols/{symbol}"): {200, 404, 422},
    ("patch", "/symbols/{symbol}"): {200, 401, 404, 422},
    ("delete", "/symbols/{symbol}"): {200, 401, 404, 422},
    ("get", "/symbols/{symbol}/forecast"): {200, 304, 404, 422},
    ("get", "/symbols/{symbol}/forecasts"): {200, 404, 422},
    ("get", "/symbols/{symbol}/accuracy"): {200, 404, 422},
    ("post", "/train"): {202, 401, 422, 429, 503},
    ("post", "/predict"): {200, 401, 404, 409, 422, 429, 503},
    ("get", "/jobs"): {200, 422},
    ("get", "/jobs/{job_id}"): {200, 404},
    ("get", "/models"): {200, 422},
    ("get", "/models/{model_id}"): {200, 404},
    ("get", "/events"): {200, 422},
    ("get", "/metrics"): {200},
}


def test_every_route_is_documented_with_its_errors(client: TestClient[Any]) -> None:
    document = client.get("/schema/openapi.json").json()
    for (method, path), statuses in OUR_ROUTES.items():
        operation = document["paths"][path][method]
        assert operation["summary"], (method, path)
        assert operation["description"], (method, path)
        documented = {int(code) for code in operation["responses"]}
        assert statuses <= documented, (method, path, statuses - documented)
        for code in documented - {200, 201, 202, 304}:
            content = operation["responses"][str(code)].get("content", {})
            assert "application/problem+json" in content, (method, path, code)
    writes = [(m, p) for (m, p) in OUR_ROUTES if m in ("post", "patch", "delete")]
    for method, path in writes:
        assert document["paths"][path][method]["security"] == [{"ApiKey": []}]
    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["name"], scheme["in"]) == ("apiKey", "X-API-Key", "header")
    train_examples = document["paths"]["/train"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["examples"]
    assert {
        "model_name": "disney_v1",
        "symbol": "DIS",
        "start_date": "2018-01-01",
        "end_date": "2025-10-30",
        "epochs": 5,
        "batch_size": 32,
        "prediction_steps": 1,
    } in train_examples


def test_the_cached_read_documents_its_conditional_request(client: TestClient[Any]) -> None:
    """The handler reads ``If-None-Match`` from the raw headers, not through a Litestar
    parameter, so the document must still name it, with the validators it answers with."""
    paths = client.get("/schema/openapi.json").json()["paths"]
    operation = paths["/symbols/{symbol}/forecast"]["get"]
    parameters = {(p["in"], p["name"]): p for p in operation["parameters"]}
    assert set(parameters) == {("path", "symbol"), ("header", "If-None-Match")}
    header = parameters[("header", "If-None-Match")]
    assert header["required"] is False
    assert {"type": "string"} in header["schema"]["oneOf"]
    for status in ("200", "304"):
        assert set(operation["responses"][status]["headers"]) == {"ETag", "Cache-Control"}


def test_swagger_ui_uses_only_local_assets(client: TestClient[Any]) -> None:
    page = client.get("/schema/swagger")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', page.text)
    assert assets, "the page loads its scripts and styles"
    assert all(asset.startswith("/static/swagger/") for asset in assets), assets
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100
    assert client.get("/static/swagger/LICENSE").status_code == 200
