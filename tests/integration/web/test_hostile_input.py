"""Hostile input gets a clear 4xx and changes nothing, on both backends (issue 14's list)."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from litestar.testing import TestClient

JSON = {"content-type": "application/json"}
PROBLEM = "application/problem+json"


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("path", ["/symbols", "/train", "/predict"])
def test_json_nested_100000_deep_is_a_400(
    client: TestClient[Any], auth: dict[str, str], db: Any, path: str
) -> None:
    before = db.counts()
    for body in (_deep(100_000), '{"symbol": ' + _deep(100_000) + "}"):
        response = client.post(path, content=body, headers={**auth, **JSON})
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
        assert "nested too deeply" in response.json()["detail"]
    assert db.counts() == before


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/symbols", {"symbol": "KO", "horizon": "7"}, "horizon"),
        ("/symbols", {"symbol": "KO", "lookback": 60.0}, "lookback"),
        ("/symbols", {"symbol": 7}, "symbol"),
        ("/train", {"symbol": "KO", "epochs": "3"}, "epochs"),
        ("/train", {"symbol": "KO", "horizon": True}, "horizon"),
    ],
)
def test_strings_and_booleans_are_not_coerced_to_numbers(
    client: TestClient[Any], auth: dict[str, str], db: Any, path: str, body: Any, field: str
) -> None:
    before = db.counts()
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert db.counts() == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/symbols", {"symbol": "ZZZ\n"}),
        ("/symbols", {"symbol": "\tKO"}),
        ("/symbols", {"symbol": "KO\x00"}),
        ("/train", {"symbol": "KO", "model_name": "mine\n"}),
        ("/train", {"symbol": "KO\x7f"}),
    ],
)
def test_control_characters_are_refused_in_identifiers(
    client: TestClient[Any], auth: dict[str, str], db: Any, path: str, body: Any
) -> None:
    before = db.counts()
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert db.counts() == before
    assert client.get("/symbols/ZZZ").status_code == 404


def test_a_control_character_in_a_path_symbol_is_refused(
    client: TestClient[Any], auth: dict[str, str], db: Any
) -> None:
    db.watch("KO")
    assert client.get("/symbols/KO%0A").status_code == 422
    response = client.patch("/symbols/KO%0A", json={"horizon": 4}, headers=auth)
    assert response.status_code == 422
    assert client.get("/symbols/KO").json()["horizon"] == 3


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_json_routes_refuse_other_content_types_with_415(
    client: TestClient[Any], auth: dict[str, str], db: Any, content_type: str | None
) -> None:
    before = db.counts()
    headers = dict(auth)
    if content_type is not None:
        headers["content-type"] = content_type
    response = client.post("/symbols", content=json.dumps({"symbol": "AAPL"}), headers=headers)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert db.counts() == before
    # The same body as JSON is accepted: the refusal was the media type, nothing else.
    charset = client.post(
        "/symbols",
        content=json.dumps({"symbol": "AAPL"}),
        headers={**auth, "content-type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 201, charset.text


def test_keyless_writes_get_401_and_never_use_up_the_rate_limit(
    make_client: Callable[..., AbstractContextManager[TestClient[Any]]],
    auth: dict[str, str],
    db: Any,
) -> None:
    db.watch("KO")
    with make_client(rate_limit_per_minute=2) as client:
        for headers in ({}, {"X-API-Key": "wrong-key-0123456789abcdef"}) * 3:
            response = client.post("/train", json={"symbol": "KO"}, headers=headers)
            assert response.status_code == 401, response.text
        # A key holder still has the whole limit, and only then gets 429.
        statuses = [
            client.post("/train", json={"symbol": "KO"}, headers=auth).status_code for _ in range(3)
        ]
    assert statuses[:2] == [202, 202]
    assert statuses[2] == 429
