"""``stockcast up`` while its SQLite file is locked by another process for 45 s (a real
``BEGIN EXCLUSIVE``): the process stays up, ``/health`` answers every time, cached reads are
served, writes and ``/ready`` get 503 with ``Retry-After``, and everything works afterwards.

Before: APScheduler's ``acquire_schedules`` raised ``database is locked`` after ~30 s, the
scheduler crashed, and writes hung for the whole busy timeout.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

LOCK_SECONDS = 45.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _drain(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)


def test_up_outlives_a_45_second_sqlite_lock(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKCAST_")}
    env |= {
        "STOCKCAST_DATA_DIR": str(tmp_path / "var"),
        "STOCKCAST_INITIAL_TRAIN_EPOCHS": "1",
        "STOCKCAST_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "stockcast", "up", "--port", str(port), "--source", "sample"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=_drain, args=(process, lines), daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=15) as client:
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, "".join(lines)
                assert time.monotonic() < deadline, "stockcast up did not start"
                try:
                    if client.get("/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            key = {"X-API-Key": (tmp_path / "var" / "api-key").read_text().strip()}
            assert client.post("/symbols", json={"symbol": "SPY"}, headers=key).status_code == 201
            time.sleep(2)  # its backfill and first training are under way

            lock = sqlite3.connect(tmp_path / "var" / "stockcast.db", isolation_level=None)
            lock.execute("BEGIN EXCLUSIVE")
            locked_at = time.monotonic()
            health: list[int] = []
            writes: list[httpx.Response] = []
            reads: list[int] = []
            ready: list[httpx.Response] = []
            try:
                while time.monotonic() - locked_at < LOCK_SECONDS:
                    health.append(client.get("/health", timeout=5).status_code)
                    if len(health) % 5 == 2:
                        writes.append(
                            client.patch("/symbols/SPY", json={"horizon": 4}, headers=key)
                        )
                        reads.append(client.get("/symbols/SPY").status_code)
                        ready.append(client.get("/ready"))
                    assert process.poll() is None, "stockcast up exited during the lock"
                    time.sleep(1)
            finally:
                lock.execute("ROLLBACK")
                lock.close()

            assert health and set(health) == {200}
            assert writes and {w.status_code for w in writes} == {503}, [w.text for w in writes]
            for write in writes:
                assert write.headers["content-type"].startswith("application/problem+json")
                assert int(write.headers["retry-after"]) > 0
            assert set(reads) == {200}
            assert {r.status_code for r in ready} == {503}
            assert all(int(r.headers["retry-after"]) > 0 for r in ready)
            assert "not writable" in ready[0].json()["reason"]

            # Afterwards: ready again, writes go through, the scheduler still runs jobs.
            _eventually(lambda: client.get("/ready").status_code == 200, within=30)
            response = client.patch("/symbols/SPY", json={"horizon": 4}, headers=key)
            assert response.status_code == 200, response.text
            assert client.post("/symbols", json={"symbol": "AAPL"}, headers=key).status_code == 201

            def aapl_ingested() -> bool:
                jobs: list[dict[str, Any]] = client.get("/jobs", params={"symbol": "AAPL"}).json()
                return any(j["kind"] == "ingest" and j["status"] == "succeeded" for j in jobs)

            _eventually(aapl_ingested, within=60)

            # No job was left "running" by the lock: every outcome was recorded.
            def settled() -> bool:
                jobs = client.get("/jobs", params={"symbol": "SPY"}).json()
                return all(j["status"] not in ("queued", "running") for j in jobs)

            _eventually(settled, within=240)
            assert process.poll() is None
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


def _eventually(check: Any, *, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not true within {within:g} s"
        time.sleep(0.5)
