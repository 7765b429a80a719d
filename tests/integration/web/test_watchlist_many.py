"""Many symbols in one request: registering and removing a batch (all or nothing, one schedule
sync), and the watchlist read page by page. Both backends."""

from __future__ import annotations

import json
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import text

from db.engine import create_sync_db_engine

PROBLEM = "application/problem+json"


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = create_sync_db_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def _state(url: str) -> tuple[list[tuple[Any, ...]], ...]:
    return (
        _rows(url, "SELECT symbol, exchange, active FROM symbols ORDER BY symbol"),
        _rows(url, "SELECT type, symbol FROM events ORDER BY id"),
        _rows(url, "SELECT kind, symbol FROM job_runs ORDER BY kind, symbol"),
    )


def test_a_batch_registers_every_symbol_with_one_schedule_sync(
    client: TestClient[Any], auth: dict[str, str], api_database_url: str
) -> None:
    batch = [
        {"symbol": "spy"},
        {"symbol": "PETR4.SA", "horizon": 3},
        {"symbol": "AAPL", "exchange": "XNAS", "retrain_cadence": "daily"},
    ]
    response = client.post("/symbols", json=batch, headers=auth)

    assert response.status_code == 201, response.text
    body = response.json()
    assert [(s["symbol"], s["exchange"], s["currency"], s["horizon"]) for s in body["symbols"]] == [
        ("SPY", "XNYS", "USD", 5),
        ("PETR4.SA", "BVMF", "BRL", 3),
        ("AAPL", "XNYS", "USD", 5),
    ]
    # One schedule sync, and one refresh per exchange naming its new symbols: their backfill,
    # first forecast and first training come in batches, not as three jobs per symbol.
    assert [job["kind"] for job in body["jobs"]] == ["sync_schedules", "refresh", "refresh"]
    symbols, events, jobs = _state(api_database_url)
    assert [row for row in jobs if row[0] not in ("sync_schedules", "refresh")] == []
    refreshes = _rows(api_database_url, "SELECT parameters FROM job_runs WHERE kind = 'refresh'")
    parameters = [json.loads(p) if isinstance(p, str) else p for (p,) in refreshes]
    asked = sorted((p["exchange"], p["symbols"]) for p in parameters)
    assert asked == [("BVMF", ["PETR4.SA"]), ("XNYS", ["AAPL", "SPY"])]
    assert [row[0] for row in symbols] == ["AAPL", "PETR4.SA", "SPY"]
    assert sum(1 for row in events if row[0] == "symbol.added") == 3
    assert [row for row in jobs if row[0] == "sync_schedules"] == [("sync_schedules", None)]
    assert client.get("/symbols/PETR4.SA").json()["horizon"] == 3


def test_a_batch_with_one_bad_item_changes_nothing(
    client: TestClient[Any], auth: dict[str, str], api_database_url: str
) -> None:
    assert client.post("/symbols", json={"symbol": "KO"}, headers=auth).status_code == 201
    before = _state(api_database_url)

    unknown_suffix = client.post(
        "/symbols", json=[{"symbol": "SPY"}, {"symbol": "ABC.ZZ"}], headers=auth
    )
    assert unknown_suffix.status_code == 422
    assert unknown_suffix.headers["content-type"].startswith(PROBLEM)
    assert "[1].symbol" in unknown_suffix.json()["detail"]

    watched = client.post("/symbols", json=[{"symbol": "SPY"}, {"symbol": "ko"}], headers=auth)
    assert watched.status_code == 409
    assert "KO" in watched.json()["detail"]

    twice = client.post("/symbols", json=[{"symbol": "SPY"}, {"symbol": "spy"}], headers=auth)
    assert twice.status_code == 422
    assert "given twice: SPY" in twice.json()["detail"]

    assert client.post("/symbols", json=[], headers=auth).status_code == 422
    too_many = [{"symbol": f"S{n:04d}"} for n in range(1001)]
    assert client.post("/symbols", json=too_many, headers=auth).status_code == 422
    assert client.post("/symbols", json=[{"symbol": "SPY"}]).status_code == 401

    assert _state(api_database_url) == before


def test_removing_many_is_all_or_nothing(
    client: TestClient[Any], auth: dict[str, str], api_database_url: str
) -> None:
    batch = [{"symbol": name} for name in ("AAA", "BBB", "CCC")]
    assert client.post("/symbols", json=batch, headers=auth).status_code == 201
    before = _state(api_database_url)

    missing = client.delete("/symbols", params=[("symbol", "AAA"), ("symbol", "ZZZ")], headers=auth)
    assert missing.status_code == 404
    assert "ZZZ" in missing.json()["detail"]
    assert client.delete("/symbols", params={"symbol": "AAA"}).status_code == 401
    assert client.delete("/symbols", params={"symbol": "A\nB"}, headers=auth).status_code == 422
    assert client.delete("/symbols", headers=auth).status_code == 422
    assert _state(api_database_url) == before

    removed = client.delete("/symbols", params=[("symbol", "aaa"), ("symbol", "CCC")], headers=auth)
    assert removed.status_code == 200, removed.text
    assert [(s["symbol"], s["active"]) for s in removed.json()["symbols"]] == [
        ("AAA", False),
        ("CCC", False),
    ]
    assert [job["kind"] for job in removed.json()["jobs"]] == ["sync_schedules"]
    assert [s["symbol"] for s in client.get("/symbols").json()] == ["BBB"]


def test_the_watchlist_reads_page_by_page(client: TestClient[Any], auth: dict[str, str]) -> None:
    names = [f"P{n:03d}" for n in range(25)]
    response = client.post("/symbols", json=[{"symbol": n} for n in names], headers=auth)
    assert response.status_code == 201

    seen: list[str] = []
    url: str | None = "/symbols?limit=10"
    pages = 0
    while url is not None:
        page = client.get(url)
        assert page.status_code == 200
        seen += [row["symbol"] for row in page.json()]
        link = page.headers.get("link")
        url = link.split(">")[0].lstrip("<") if link else None
        pages += 1
    assert seen == names
    assert pages == 3  # 10 + 10 + 5: the short last page has no next link
    assert [r["symbol"] for r in client.get("/symbols?after=P020").json()] == names[21:]
    assert client.get("/symbols?limit=0").status_code == 422
    assert client.get("/symbols?limit=1001").status_code == 422
