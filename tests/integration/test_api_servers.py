"""``stockcast api`` under either ASGI server: granian builds the app in its own worker through
the ``stockcast.asgi`` factory, lifespan included, and stops gracefully on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow

API_KEY = "servers-test-key-0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_health(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the API exited {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"no /health within 90 s:\n{log.read_text()}")


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_the_api_serves_reads_and_writes_and_stops_on_sigterm(
    server: str, tmp_path: Path, database_url: str
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKCAST_")}
    env |= {
        "STOCKCAST_DATABASE_URL": database_url,
        "STOCKCAST_DATA_DIR": str(tmp_path),
        "STOCKCAST_SOURCE": "sample",
        "STOCKCAST_API_KEYS": API_KEY,
        "STOCKCAST_API_SERVER": server,
        "STOCKCAST_PORT": str(port),
    }
    log = tmp_path / "api.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "stockcast", "api"],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_health(base, process, log)
        workers = psutil.Process(process.pid).children(recursive=True)
        if server == "granian":
            assert workers, "granian serves from a worker process"
        # The lifespan ran in whichever process serves: the database is open, the key checked.
        assert httpx.get(f"{base}/ready", timeout=10).status_code == 200
        refused = httpx.post(f"{base}/symbols", json={"symbol": "SPY"}, timeout=10)
        assert refused.status_code == 401
        created = httpx.post(
            f"{base}/symbols", json={"symbol": "SPY"}, headers={"X-API-Key": API_KEY}, timeout=30
        )
        assert created.status_code == 201, created.text
        listed = httpx.get(f"{base}/symbols", timeout=10).json()
        symbols = listed["items"] if isinstance(listed, dict) else listed
        assert [row["symbol"] for row in symbols] == ["SPY"]

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
        time.sleep(1)
        assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
        text = log.read_text()
        assert "Traceback" not in text, text
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_an_unknown_server_is_a_configuration_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKCAST_")}
    env |= {"STOCKCAST_DATA_DIR": str(tmp_path), "STOCKCAST_API_SERVER": "hypercorn"}
    result = subprocess.run(
        [sys.executable, "-m", "stockcast", "api"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "STOCKCAST_API_SERVER" in result.stderr and "granian, uvicorn" in result.stderr
