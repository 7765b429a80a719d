"""``kill -9`` of ``stockcast up`` in the middle of a training (issue 14): no process of it is
left 15 s later, the restart records the abandoned attempt (``job_runs`` and a ``job.failed``
event), and MLflow holds no untagged version without a ``model_versions`` row."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@contextmanager
def _up(data: Path, port: int, *args: str) -> Iterator[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKCAST_")}
    env |= {
        "STOCKCAST_DATA_DIR": str(data),
        # A first training long enough to be killed in the middle of.
        "STOCKCAST_INITIAL_TRAIN_EPOCHS": "200",
        "STOCKCAST_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "stockcast", "up", "--port", str(port), "--source", "sample", *args],
        cwd=data.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True).start()
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        for pid in _descendants(process.pid):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _eventually(check: Any, *, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {within:g} s waiting for {what}"
        time.sleep(0.5)


def test_kill_9_of_up_mid_training_leaves_nothing_behind(tmp_path: Path) -> None:
    data = tmp_path / "var"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with _up(data, port, "--watch", "SPY") as first:

        def training_child() -> int | None:
            for pid in _descendants(first.pid):
                fields = _stat(pid)
                if fields is not None and int(fields[16]) > 0:  # the niced training child
                    return pid
            return None

        child = _eventually(training_child, within=180, what="a training child")
        time.sleep(3)
        retrains = httpx.get(f"{base}/jobs", params={"kind": "retrain"}).json()
        running = [job["id"] for job in retrains if job["status"] == "running"]
        assert running, retrains
        family = _descendants(first.pid)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        time.sleep(15)
        left = sorted(pid for pid in family | {child} if _alive(pid))
        assert left == [], f"processes of the killed stockcast up still run: {left}"

    with _up(data, port) as second:

        def abandoned_event() -> dict[str, Any] | None:
            with sqlite3.connect(data / "stockcast.db") as db:
                rows = db.execute(
                    "SELECT payload FROM events WHERE type = 'job.failed' ORDER BY id"
                ).fetchall()
            payloads = [json.loads(row[0]) for row in rows]
            return next(
                (p for p in payloads if p["job_id"] == running[0] and p["status"] == "abandoned"),
                None,
            )

        event = _eventually(abandoned_event, within=120, what="the abandoned attempt's record")
        assert "stopped during attempt 1" in event["error"]

        def job_record() -> dict[str, Any] | None:
            try:
                return dict(httpx.get(f"{base}/jobs/{running[0]}").json())
            except httpx.TransportError:
                return None  # the API starts after the scheduler's start-up records

        record = _eventually(job_record, within=120, what="the API after the restart")
        # Recorded abandoned; or APScheduler, its lease expired, already runs the job again.
        assert record["status"] == "abandoned" or record["attempts"] >= 2, record
        assert second.poll() is None

    # Every registered version is known to the database, or tagged orphaned.
    recorded = {
        (row[0], row[1])
        for row in sqlite3.connect(data / "stockcast.db").execute(
            "SELECT registry_name, registry_version FROM model_versions "
            "WHERE registry_version IS NOT NULL"
        )
    }
    with sqlite3.connect(data / "mlflow.db") as mlflow:
        versions = mlflow.execute("SELECT name, version FROM model_versions").fetchall()
        orphans = {
            (name, int(version))
            for name, version in mlflow.execute(
                "SELECT name, version FROM model_version_tags WHERE key = 'stockcast.orphan'"
            )
        }
    unknown = [(n, int(v)) for n, v in versions if (n, int(v)) not in recorded | orphans]
    assert unknown == []
