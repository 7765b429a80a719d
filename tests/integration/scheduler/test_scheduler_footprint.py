"""A scheduler node starts without torch: it only loads it when a forecast job needs a model
(training runs in child processes), so an idle node or a pure scheduler stays small."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_a_started_node_has_not_loaded_torch(tmp_path: Path, sqlite_template: Path) -> None:
    database = tmp_path / "stockcast.db"
    database.write_bytes(sqlite_template.read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKCAST_")}
    env |= {
        "STOCKCAST_DATABASE_URL": f"sqlite:///{database}",
        "STOCKCAST_DATA_DIR": str(tmp_path),
        "STOCKCAST_SOURCE": "sample",
    }
    log = tmp_path / "node.log"
    with log.open("wb") as output:
        node = subprocess.Popen(
            [sys.executable, "-m", "scheduler", "--poll-seconds", "0.2"],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "Scheduler started" not in log.read_text():
            assert node.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(2)  # a few idle polls
        maps = _maps(node.pid)
        assert "libpython" in maps or "python" in maps  # the check reads a real process map
        assert "libtorch" not in maps, "an idle scheduler node loaded torch"
        node.send_signal(signal.SIGTERM)
        assert node.wait(timeout=60) == 0, log.read_text()
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
