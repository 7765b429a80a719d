"""Two real ``python -m scheduler`` nodes on PostgreSQL share a batched refresh, and one of them is
SIGKILLed while it holds a batch: the survivor finishes the batch (taken over when its lease
lapses, or re-enqueued when released as abandoned) and every symbol ends up with exactly one
forecast for the close."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from apscheduler import AsyncScheduler
from sqlalchemy import select

from db.contracts import JobRequest
from db.engine import create_async_db_engine, create_session_factory
from db.enqueue import enqueue_jobs
from db.jobstore import create_data_store, create_event_broker
from db.kinds import JobKind
from db.models import ForecastRow, JobStatus
from forecasting.artifacts import ModelArtifact
from forecasting.sources import CsvSource
from tests.integration.scheduler.conftest import copy_prices
from tests.integration.scheduler.test_refresh_batches import seed, tiny_artifact
from tests.integration.scheduler.test_scheduler_processes import (
    Node,
    _node_options,
    _poll_until,
    _resolved,
    _runs,
    postgres_url,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

__all__ = ["postgres_url", "tiny_artifact"]  # fixtures used here

SYMBOLS = 160
BATCH = 20
SOURCES = ("AAPL", "DIS", "JPM", "KO", "MSFT", "NVDA", "SPY", "XOM")


class _Harness:
    """What :func:`seed` needs: sessions and the CSV directory."""

    def __init__(self, sessions: Any, prices_dir: Path) -> None:
        self.sessions = sessions
        self.prices_dir = prices_dir


def _write_prices(shared: Path, workdir: Path) -> tuple[list[str], dict[str, date]]:
    """S000.. as copies of the shared files; each one's newest bar (tonight's session)."""
    symbols = [f"S{n:03d}" for n in range(SYMBOLS)]
    newest: dict[str, date] = {}
    for n, symbol in enumerate(symbols):
        path = copy_prices(shared, workdir, SOURCES[n % len(SOURCES)])
        path.rename(workdir / f"{symbol}.csv")
        newest[symbol] = CsvSource(workdir).newest_date(symbol)
    return symbols, newest


async def test_a_batch_whose_node_is_killed_is_finished_once_by_the_other(
    postgres_url: str,
    tmp_path: Path,
    shared_prices_dir: Path,
    tiny_artifact: ModelArtifact,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STOCKCAST_REFRESH_BATCH_SIZE", str(BATCH))  # the nodes' setting
    symbols, newest = _write_prices(shared_prices_dir, tmp_path)
    engine = create_async_db_engine(postgres_url)
    sessions = create_session_factory(engine)
    await seed(_Harness(sessions, tmp_path), symbols, tiny_artifact, bars=True)
    # A lease longer than the process test's 3 s: a batch keeps a node busy for seconds, and on a
    # loaded machine its lease extension can come late.
    options = (*_node_options(), "--concurrency", "2", "--lease-seconds", "10")
    nodes = [Node(name, postgres_url, tmp_path, *options) for name in ("node-a", "node-b")]
    try:
        with anyio.fail_after(240):
            await _story(nodes, engine, sessions, postgres_url)
    finally:
        for node in nodes:
            if node.process.poll() is None:
                node.process.kill()
                node.process.wait(timeout=10)
        await engine.dispose()
    async with sessions() as session:
        rows = (
            await session.execute(
                select(
                    ForecastRow.symbol, ForecastRow.issued_at, ForecastRow.last_observed_date
                ).distinct()
            )
        ).all()
    forecasts = Counter(symbol for symbol, _, _ in rows)
    # Every symbol exactly one forecast, from its new bar: none lost, none made twice.
    assert forecasts == Counter(dict.fromkeys(symbols, 1))
    assert {symbol: last for symbol, _, last in rows} == newest


async def _story(nodes: list[Node], engine: Any, sessions: Any, url: str) -> None:
    for node in nodes:
        await node.wait_started()
    async with AsyncScheduler(create_data_store(engine), create_event_broker(url)) as client:
        await enqueue_jobs(
            client, sessions, [JobRequest.refresh("XNYS")], result_expiration=timedelta(minutes=5)
        )

        async def a_holds_a_batch_mid_refresh() -> bool:
            runs = await _runs(sessions)
            held = any(
                r.kind == JobKind.REFRESH_BATCH
                and r.worker == "node-a"
                and r.status is JobStatus.RUNNING
                for r in runs
            )
            return held and await _forecast_count(sessions) > 0

        await _poll_until(a_holds_a_batch_mid_refresh, within=60, every=0.02)
        nodes[0].process.kill()  # SIGKILL, mid-batch
        nodes[0].process.wait(timeout=10)
        # A commit node-a sent just before the kill may still be in the server's hands: let it
        # land. Killed mid-batch are the batches node-a still held in APScheduler's store and
        # had not recorded as finished (one it had just recorded succeeded stays so: nobody
        # runs it again; one it had released will be recorded by the survivor).
        await anyio.sleep(1)
        held = await _held_by(engine, "node-a")
        killed = [r.id for r in await _runs(sessions) if r.id in held and r.finished_at is None]
        assert killed

        async def all_batches_done() -> bool:
            runs = await _runs(sessions)
            by_id = {r.id: r for r in runs}
            batches = [r for r in runs if r.kind == JobKind.REFRESH_BATCH]
            return len(batches) >= SYMBOLS // BATCH and all(
                _resolved(r, by_id).status is JobStatus.SUCCEEDED for r in batches
            )

        try:
            await _poll_until(all_batches_done, within=150, every=0.25)
        except TimeoutError:
            runs = await _runs(sessions)
            raise AssertionError(
                f"refresh unfinished: {Counter((r.kind, r.status) for r in runs)}\n"
                f"node-b's log:\n{nodes[1].output()[-4000:]}"
            ) from None
    runs = await _runs(sessions)
    by_id = {r.id: r for r in runs}
    for job_id in killed:
        # Node-b finished the killed batch, once: either it took the job over when its lease
        # lapsed (the same job, run again there), or its clean-up released the job as
        # abandoned first and the copy re-enqueued in its place ran there.
        run = by_id[job_id]
        assert run.status in (JobStatus.SUCCEEDED, JobStatus.ABANDONED), run.status
        finished = _resolved(run, by_id)
        assert (finished.id != job_id) is (run.status is JobStatus.ABANDONED)
        assert finished.status is JobStatus.SUCCEEDED
        assert finished.worker == "node-b"
    assert nodes[1].stop() == 0, nodes[1].output()


async def _held_by(engine: Any, node: str) -> list[str]:
    """The refresh batches ``node`` holds (acquired, not released) in APScheduler's store."""
    jobs = create_data_store(engine).get_table_definitions().tables["jobs"]
    query = select(jobs.c.id).where(
        jobs.c.task_id == JobKind.REFRESH_BATCH.value, jobs.c.acquired_by == node
    )
    async with engine.connect() as connection:
        return [str(job_id) for job_id in (await connection.execute(query)).scalars()]


async def _forecast_count(sessions: Any) -> int:
    from sqlalchemy import func

    async with sessions() as session:
        return int((await session.execute(select(func.count(ForecastRow.id)))).scalar_one())
