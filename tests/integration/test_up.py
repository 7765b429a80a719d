"""``stockcast up``: the whole service in one process, offline on the bundled sample."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

KEY_LINE = re.compile(r"API key\s+(\S+)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKCAST_")}
    env.update(
        {
            "STOCKCAST_DATA_DIR": str(data_dir),
            # A short first training keeps the test quick; the path is the real one.
            "STOCKCAST_INITIAL_TRAIN_EPOCHS": "1",
            "STOCKCAST_LOG_LEVEL": "WARNING",
        }
    )
    return env


@contextmanager
def _up(cwd: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "stockcast", "up", "--port", str(port), *args],
        cwd=cwd,
        env=_env(cwd / "var"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        in_banner = False
        # The banner is printed once the API answers; it ends with a blank line.
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("stockcast is up"):
                in_banner = True
            elif in_banner and not line.strip():
                break
        yield process, f"http://127.0.0.1:{port}", lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def _wait(check: Callable[[], Any], *, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {within:g} s waiting for {what}")


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    return process.wait(timeout=60)


def test_up_serves_a_forecast_offline_and_stops_cleanly(tmp_path: Path) -> None:
    with _up(tmp_path, "--source", "sample", "--watch", "SPY") as (process, base, lines):
        banner = "".join(lines)
        key_match = KEY_LINE.search(banner)
        assert key_match, banner
        key = key_match.group(1)
        assert "SPY: added" in banner
        key_file = tmp_path / "var" / "api-key"
        assert key_file.read_text().strip() == key
        assert key_file.stat().st_mode & 0o777 == 0o600

        assert httpx.get(f"{base}/ready").status_code == 200

        def forecast() -> dict[str, Any] | None:
            response = httpx.get(f"{base}/symbols/SPY/forecast")
            return response.json() if response.status_code == 200 else None

        first = _wait(forecast, within=120, what="SPY's first forecast")
        assert len(first["steps"]) == 5
        for step in first["steps"]:
            assert step["lower_95"] <= step["lower_80"] <= step["point"] <= step["upper_80"]
            assert step["upper_80"] <= step["upper_95"]

        # The first training ends as a recorded model version (champion or rejected by the
        # gate), logged to the local MLflow store under the data dir.
        def model_versions() -> list[dict[str, Any]]:
            return list(httpx.get(f"{base}/models", params={"symbol": "SPY"}).json())

        versions = _wait(model_versions, within=240, what="the first model version")
        assert versions[0]["status"] in ("champion", "rejected")
        with sqlite3.connect(tmp_path / "var" / "mlflow.db") as mlflow_db:
            assert mlflow_db.execute("SELECT count(*) FROM runs").fetchone()[0] >= 1
        assert _stop(process) == 0

    # A restart keeps the key, the watchlist and the stored forecast.
    with _up(tmp_path, "--source", "sample") as (process, base, lines):
        assert f"API key     {key}" in "".join(lines)
        assert httpx.get(f"{base}/symbols/SPY/forecast").status_code == 200
        watched = httpx.get(f"{base}/symbols").json()
        assert [item["symbol"] for item in watched] == ["SPY"]
        assert _stop(process) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--watch", "SPY,../../etc/passwd"], "--watch: invalid symbol"),
        (["--source", "bloomberg"], "--source: expected yfinance, csv:DIR or sample"),
        (["--source", "yfinance", "--replay"], "--replay: a market replay needs a static source"),
        (["--replay-step", "0"], "--replay-step: expected a number of seconds"),
    ],
)
def test_up_refuses_bad_options_before_touching_anything(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stockcast", "up", *args],
        cwd=tmp_path,
        env=_env(tmp_path / "var"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "var").exists()
