"""A training child dies with its parent and trains at a lower CPU priority.

Real processes: a parent Python process runs a long training through ``anyio.to_process`` (as the
retrain job does), the test waits until the child is training, ``kill -9``s the parent and checks
the child by PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

#: A parent that trains a deliberately long model in a child process, as the retrain job does.
PARENT = textwrap.dedent(
    """
    import logging
    import anyio, anyio.to_process
    from forecasting.bars import read_bars_csv
    from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
    from forecasting.promotion import PromotionPolicy
    from forecasting.sources import SAMPLE_DIRECTORY
    from scheduler.training_process import TrainingRequest, train_in_child

    bars = read_bars_csv(str(SAMPLE_DIRECTORY / "GOOG.csv")).tail(600).reset_index(drop=True)
    request = TrainingRequest(
        symbol="GOOG",
        bars=bars,
        model_config=ModelConfig(horizon=3, lookback=20, hidden_size=32, num_layers=2),
        train_config=TrainConfig(epochs=500, batch_size=16, accelerator="cpu", num_threads=1),
        backtest_config=BacktestConfig(folds=3, test_size=20),
        policy=PromotionPolicy.ALWAYS,
        champion=None,
        tracking_uri=None,
        model_name=None,
        artifact_root=None,
        log_level=logging.WARNING,
    )
    anyio.run(anyio.to_process.run_sync, train_in_child, request)
    """
)


def _stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name, or None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def _nice(pid: int) -> int | None:
    fields = _stat(pid)
    # After the name: state(0) ppid(1) ... nice is field 19 of stat, index 16 here.
    return None if fields is None else int(fields[16])


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    # A zombie waits only for its (new) parent to collect its status: it runs nothing.
    return fields is not None and fields[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_kill_9_of_the_parent_leaves_no_training_child_behind() -> None:
    root = Path(__file__).resolve().parents[3]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    child: int | None = None
    try:
        parent_nice = os.getpriority(os.PRIO_PROCESS, parent.pid)
        deadline = time.monotonic() + 120
        # Training has begun once the child lowered its priority (the first thing it does).
        while child is None:
            assert parent.poll() is None, "the parent exited before training"
            assert time.monotonic() < deadline, "no training child started"
            for pid in _children(parent.pid):
                if (_nice(pid) or 0) > parent_nice:
                    child = pid
            time.sleep(0.2)
        time.sleep(3)  # well into the training
        assert _alive(child)
        assert _nice(child) == parent_nice + 10

        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        time.sleep(15)
        assert not _alive(child), f"training child {child} outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)  # leave nothing behind, even when the test fails
