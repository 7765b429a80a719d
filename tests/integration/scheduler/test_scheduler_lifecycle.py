"""Starting and stopping real ``python -m scheduler`` processes on SQLite: a second node on the
same file is refused, an unmigrated database is refused, and SIGTERM stops a node with exit status
0, cancelling (and killing the training process of) a job that outlives the grace period."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import psutil
import pytest

from db.kinds import JobKind
from db.models import JobStatus
from db.repositories import JobRepository, ModelVersionRepository

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _env(database_url: str, workdir: Path, prices: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "STOCKCAST_DATABASE_URL": database_url,
        "STOCKCAST_DATA_DIR": str(workdir),
        "STOCKCAST_SOURCE": f"csv:{prices}",
        "STOCKCAST_LOG_LEVEL": "INFO",
        **extra,
    }


async def test_a_second_node_on_one_sqlite_file_is_refused(sqlite_harness, tmp_path: Path) -> None:
    harness = sqlite_harness
    async with harness.node():
        result = await anyio.run_process(
            [sys.executable, "-m", "scheduler"],
            env=_env(harness.database_url, tmp_path, harness.prices_dir),
            cwd=tmp_path,
            check=False,
        )
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "another scheduler process" in stderr
    assert "SQLite supports one scheduler process" in stderr


async def test_an_unmigrated_database_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "empty.db"
    result = await anyio.run_process(
        [sys.executable, "-m", "scheduler"],
        env=_env(f"sqlite:///{database}", tmp_path, tmp_path),
        cwd=tmp_path,
        check=False,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "not migrated" in stderr and "stockcast db upgrade" in stderr


async def test_sigterm_stops_gracefully_and_cancels_a_training_that_outlives_the_grace(
    sqlite_harness, tmp_path: Path
) -> None:
    harness = sqlite_harness
    harness.write_prices("DIS", rows=2600)
    log = tmp_path / "node.log"
    env = _env(
        harness.database_url,
        tmp_path,
        harness.prices_dir,
        STOCKCAST_INITIAL_TRAIN_EPOCHS="200",
        # Early stopping would end the training within seconds (and then nothing is left to
        # cancel): without it, 200 epochs outlive the 2 s grace on any machine.
        STOCKCAST_TRAIN_PATIENCE="200",
        STOCKCAST_BACKTEST_FOLDS="1",
        STOCKCAST_MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    with log.open("wb") as output:
        node = await anyio.open_process(
            [sys.executable, "-m", "scheduler", "--shutdown-seconds", "2", "--poll-seconds", "0.2"],
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        async with harness.client() as client:
            await harness.watch(client, "DIS")  # ingest, then the first (long) training

            async def training() -> bool:
                jobs = await harness.jobs()
                return any(j.kind == "retrain" and j.status is JobStatus.RUNNING for j in jobs)

            await harness.wait_for(training, within=60, what="the first training to start")
            trainers: list[psutil.Process] = []

            async def training_process() -> bool:
                # The job is running before its child exists (it loads the bars first); on a
                # loaded machine that can take seconds, so wait for the child itself.
                trainers[:] = [
                    child
                    for child in psutil.Process(node.pid).children(recursive=True)
                    if "anyio.to_process" in " ".join(child.cmdline())
                ]
                return bool(trainers)

            await harness.wait_for(training_process, within=60, what="the training process")
            await anyio.sleep(1)  # let the training process get going
            node.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                await node.wait()
        output_text = log.read_text(errors="replace")
        assert node.returncode == 0, output_text
        assert "stopping gracefully" in output_text
        # The training, and under load perhaps a follow-up job still running at the grace's end.
        assert re.search(r"cancelling [12] unfinished job\(s\)", output_text), output_text
        assert not [p for p in trainers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        jobs = {job.kind: job for job in await harness.jobs()}
        retrain = jobs[JobKind.RETRAIN]
        assert retrain.status is JobStatus.CANCELLED
        assert retrain.error is not None and "shut down before the job finished" in retrain.error
        # Expensive and not idempotent: a cancelled training is not queued again.
        assert retrain.result is None
        async with harness.sessions() as session:
            assert await ModelVersionRepository(session).list(symbol="DIS") == []
            assert (await JobRepository(session).get(jobs[JobKind.INGEST].id)).status is (
                JobStatus.SUCCEEDED
            )
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
