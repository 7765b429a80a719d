"""One log line format for a whole run: the service's own loggers, APScheduler, alembic, the ASGI
server and the framework all write ``DATE TIME LEVEL logger: message`` (the format of
``stockcast.cli``), under ``stockcast up`` and under both servers of ``stockcast api``; and a quiet
run (a 404, clients leaving the event stream) logs no warning and no traceback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")
# The lines that are not log records: `stockcast up`'s banner and its stop notice.
NOT_LOGS = re.compile(r"^(stockcast[: ]|\s|$)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(argv: list[str], tmp_path: Path, extra: dict[str, str]) -> list[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKCAST_")}
    env |= {
        "STOCKCAST_DATA_DIR": str(tmp_path / "var"),
        "STOCKCAST_SOURCE": "sample",
        "STOCKCAST_LOG_LEVEL": "INFO",
        "STOCKCAST_PORT": str(port),
        **extra,
    }
    log = tmp_path / "run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "stockcast", *argv],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        assert httpx.get(f"http://127.0.0.1:{port}/symbols/NOPE", timeout=10).status_code == 404
        # A client that leaves the event stream is ordinary, not a warning.
        for _ in range(3):
            with httpx.stream("GET", f"http://127.0.0.1:{port}/events", timeout=10) as stream:
                assert stream.status_code == 200
        time.sleep(1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return log.read_text().splitlines()


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (["up"], {}),
        (["api", "--server", "uvicorn"], {}),
        (["api", "--server", "granian"], {}),
    ],
    ids=["up", "api-uvicorn", "api-granian"],
)
def test_every_log_line_has_the_one_format(
    argv: list[str], extra: dict[str, str], tmp_path: Path
) -> None:
    if argv[0] == "api":
        subprocess.run(
            [sys.executable, "-m", "stockcast", "db", "upgrade"],
            cwd=tmp_path,
            env={**os.environ, "STOCKCAST_DATA_DIR": str(tmp_path / "var")},
            check=True,
            capture_output=True,
        )
    lines = _run(argv, tmp_path, extra)
    records = [line for line in lines if not NOT_LOGS.match(line)]
    assert len(records) >= 3, lines  # the server's start and stop lines at least
    assert [line for line in records if not LINE.match(line)] == []
    assert [line for line in records if " WARNING " in line or " ERROR " in line] == []
    assert not any("Traceback" in line for line in lines)
