"""``/health``, ``/ready`` and the OpenAPI document, in-process and through ``python -m web``."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from litestar.testing import TestClient

from stockcast.schema import head_revision
from web.app import create_app
from web.config import WebConfig


def _client(url: str) -> TestClient:  # type: ignore[type-arg]
    return TestClient(create_app(WebConfig(database_url=url, expected_revision=head_revision())))


def test_ready_on_a_migrated_database(database_url: str) -> None:
    with _client(database_url) as client:
        assert client.get("/health").json() == {"status": "ok"}
        response = client.get("/ready")
        assert response.status_code == 200
        assert response.json()["revision"] == head_revision()


def _assert_not_ready(response: httpx.Response, detail: str) -> dict[str, object]:
    """A 503 from /ready is problem details with Retry-After, ``detail`` saying why."""
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) > 0
    problem: dict[str, object] = response.json()
    assert problem["status"] == 503
    assert problem["type"] == "urn:stockcast:problem:not-ready"
    assert problem["title"] == "Not ready"
    assert str(problem["detail"]).startswith(detail), problem
    assert problem["reason"] == problem["detail"]  # for probes that read the earlier body
    assert problem["expected_revision"] == head_revision()
    return problem


def test_not_ready_on_an_unmigrated_database(empty_database_url: str) -> None:
    with _client(empty_database_url) as client:
        assert client.get("/health").status_code == 200
        problem = _assert_not_ready(client.get("/ready"), "database is not migrated")
        assert problem["revision"] is None


def test_not_ready_while_another_process_holds_the_sqlite_write_lock(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """A real ``BEGIN EXCLUSIVE`` from another connection: reads work, writes cannot."""
    database = tmp_path / "stockcast.db"
    shutil.copyfile(sqlite_template, database)
    with _client(f"sqlite:///{database}") as client:
        assert client.get("/ready").status_code == 200
        lock = sqlite3.connect(database, isolation_level=None)
        try:
            lock.execute("BEGIN EXCLUSIVE")
            problem = _assert_not_ready(client.get("/ready"), "database not writable")
            assert problem["revision"] == head_revision()
            assert client.get("/health").status_code == 200
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert client.get("/ready").status_code == 200


def test_not_ready_when_the_database_is_unreachable() -> None:
    with _client("postgresql://nobody@127.0.0.1:9/stockcast") as client:
        _assert_not_ready(client.get("/ready"), "database unreachable")


def test_openapi_is_served(database_url: str) -> None:
    with _client(database_url) as client:
        document = client.get("/schema/openapi.json").json()
        assert {"/health", "/ready"} <= set(document["paths"])
        assert client.get("/schema/swagger").status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serve(database_url: str, cwd: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "STOCKCAST_DATABASE_URL": database_url,
        "STOCKCAST_PORT": str(port),
        "STOCKCAST_SOURCE": "sample",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "web"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"python -m web exited: {process.stderr.read() if process.stderr else ''}"
                )
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_python_m_web_answers_ready_per_database_state(
    database_url: str, empty_database_url: str, tmp_path: Path
) -> None:
    with _serve(database_url, tmp_path) as base:
        assert httpx.get(f"{base}/ready").status_code == 200
    with _serve(empty_database_url, tmp_path) as base:
        assert httpx.get(f"{base}/ready").status_code == 503
