"""``stockcast health`` against real ``stockcast api`` and ``python -m scheduler`` processes: healthy
while they run, unhealthy when stopped (SIGSTOP), gone, or cut off from their database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from stockcast.cli import main
from stockcast.commands.health import check_heartbeat

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _service(
    argv: list[str], database_url: str, workdir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKCAST_")}
    env |= {
        "STOCKCAST_DATABASE_URL": database_url,
        "STOCKCAST_DATA_DIR": str(workdir),
        "STOCKCAST_SOURCE": "sample",
        "STOCKCAST_LOG_LEVEL": "WARNING",
    }
    with (workdir / "service.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, *argv], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.terminate()
            process.wait(timeout=60)


@pytest.fixture
def health(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., tuple[int, str]]:
    """Runs ``stockcast health ARGS`` in this process with the environment given."""

    def run(*args: str, env: dict[str, str]) -> tuple[int, str]:
        for name in [name for name in os.environ if name.startswith("STOCKCAST_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("STOCKCAST_DATA_DIR", str(tmp_path / "health"))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        status = main(["health", *args])
        return status, capsys.readouterr().out

    return run


def _until(check: Callable[[], tuple[int, str]], expected: int, within: float) -> str:
    deadline = time.monotonic() + within
    while True:
        status, out = check()
        if status == expected:
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"health still exits {status} after {within:g} s:\n{out}")
        time.sleep(0.5)


def test_api_health_asks_the_api_process_on_its_own_port(
    tmp_path: Path, sqlite_template: Path, health: Callable[..., tuple[int, str]]
) -> None:
    database = tmp_path / "stockcast.db"
    database.write_bytes(sqlite_template.read_bytes())
    database_url = f"sqlite:///{database}"
    port = _free_port()
    # STOCKCAST_PORT says nothing here: the port comes from the process's command line.
    env = {"STOCKCAST_DATABASE_URL": database_url, "STOCKCAST_PORT": "1"}
    with _service(["-m", "stockcast", "api", "--port", str(port)], database_url, tmp_path) as api:
        pid = str(api.pid)
        out = _until(lambda: health("--pid", pid, env=env), 0, within=90)
        assert out.strip() == f"api http: ok: GET http://127.0.0.1:{port}/health -> 200"

        # Alive, but answering nothing: stop the process that serves (granian's worker).
        serving = [*psutil.Process(api.pid).children(recursive=True)] or [psutil.Process(api.pid)]
        for process in serving:
            process.suspend()
        status, out = health("--pid", pid, env=env)
        assert status == 1
        assert out.startswith("api http: FAILED: GET ")
        for process in serving:
            process.resume()
        assert health("--pid", pid, env=env)[0] == 0

        api.terminate()
        assert api.wait(timeout=60) == 0
    status, out = health("--pid", pid, env=env)
    assert status == 1
    assert f"process {pid} is not running" in out


def test_scheduler_health_needs_the_process_running_and_the_database(
    tmp_path: Path, database_url: str, health: Callable[..., tuple[int, str]]
) -> None:
    env = {"STOCKCAST_DATABASE_URL": database_url}
    with _service(["-m", "scheduler"], database_url, tmp_path) as scheduler:
        pid = str(scheduler.pid)
        out = _until(lambda: health("--pid", pid, env=env), 0, within=60)
        lines = out.splitlines()
        assert lines[0].startswith(f"scheduler process: ok: process {pid} is ")
        assert lines[1].startswith("scheduler database: ok: ")
        assert lines[2].startswith("scheduler heartbeat: ok: node ")
        assert len(lines) == 3

        # The node's own beat, seen from two minutes on: too old, so unhealthy.
        later = datetime.now(UTC) + timedelta(seconds=120)
        stale = check_heartbeat(
            database_url, host=socket.gethostname(), pid=scheduler.pid, now=later
        )
        assert not stale.healthy
        assert "limit 60 s" in stale.detail
        other = check_heartbeat(database_url, host=socket.gethostname(), pid=1)
        assert (other.healthy, other.detail) == (
            False,
            f"no heartbeat of process 1 on {socket.gethostname()}",
        )

        os.kill(scheduler.pid, signal.SIGSTOP)
        out = _until(lambda: health("--pid", pid, env=env), 1, within=10)
        assert f"scheduler process: FAILED: process {pid} is stopped" in out
        os.kill(scheduler.pid, signal.SIGCONT)
        _until(lambda: health("--pid", pid, env=env), 0, within=10)

        # The same process, checked against a database that is not there: nothing listens on
        # this port, so the connection is refused.
        gone = f"postgresql://postgres@127.0.0.1:{_free_port()}/stockcast"
        status, out = health("--pid", pid, env={"STOCKCAST_DATABASE_URL": gone})
        assert status == 1
        assert "scheduler database: FAILED: postgresql+psycopg://postgres@127.0.0.1:" in out

        scheduler.kill()
        scheduler.wait(timeout=30)
    status, out = health("--pid", pid, env=env)
    assert status == 1
    assert f"process {pid} is not running" in out


def test_a_process_that_is_no_service_has_no_role_to_check(
    health: Callable[..., tuple[int, str]],
) -> None:
    status, out = health("--pid", str(os.getpid()), env={})
    assert status == 1
    assert f"process {os.getpid()} is not a stockcast service; use --role" in out
