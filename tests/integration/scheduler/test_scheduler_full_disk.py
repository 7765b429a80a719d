"""A scheduler node whose SQLite file lives on a filesystem that fills up (a real 16 MiB tmpfs,
filled to the last byte) keeps running: a training that ends while nothing can be written keeps
its result until the write goes through, the schedule's fire times wait instead of being dropped,
and once space is back every piece of work completes, recorded once. Needs root to mount the
tmpfs; SQLite only (PostgreSQL's disk belongs to its server)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from apscheduler import AsyncScheduler, CoalescePolicy
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from db.engine import create_async_db_engine, create_session_factory
from db.kinds import JobKind
from db.models import JobRun, JobStatus, SchedulerHeartbeat
from db.repositories import ModelVersionRepository
from tests.integration.scheduler.conftest import SchedulerHarness
from tests.integration.web.test_full_disk import _fill, _small_filesystem

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("mount") is None,
        reason="mounting a small tmpfs needs root (the container's tests run as root)",
    ),
]

RETRAIN = {"symbol": "KO", "params": {"epochs": 5}}


@pytest.fixture
async def small_disk_harness(
    tmp_path: Path, sqlite_template: Path, prices_dir: Path, shared_prices_dir: Path
) -> AsyncIterator[SchedulerHarness]:
    """A harness whose SQLite database is on a 16 MiB filesystem of its own."""
    with _small_filesystem(tmp_path / "small", size="16m") as small:
        database = small / "stockcast.db"
        shutil.copyfile(sqlite_template, database)
        url = f"sqlite:///{database}"
        engine = create_async_db_engine(url)
        try:
            yield SchedulerHarness(
                database_url=url,
                engine=engine,
                sessions=create_session_factory(engine),
                prices_dir=prices_dir,
                shared_prices_dir=shared_prices_dir,
            )
        finally:
            await engine.dispose()


async def _run(harness: SchedulerHarness, job_id: str) -> JobRun | None:
    async with harness.sessions() as session:
        return await session.get(JobRun, job_id, populate_existing=True)


async def _status(harness: SchedulerHarness, job_id: str) -> JobStatus | None:
    row = await _run(harness, job_id)
    return row.status if row else None


async def _timed_retrain(harness: SchedulerHarness, client: AsyncScheduler) -> float:
    """Seconds one retrain takes on this machine, run before the fault."""
    started = anyio.current_time()
    job_id = await harness.enqueue(client, JobKind.RETRAIN, RETRAIN, symbol="KO")

    async def done() -> bool:
        return await _status(harness, job_id) is JobStatus.SUCCEEDED

    await harness.wait_for(done, within=300, what="the first retrain")
    return anyio.current_time() - started


async def _fires(harness: SchedulerHarness, schedule_id: str) -> dict[datetime, JobStatus]:
    async with harness.sessions() as session:
        query = select(JobRun).where(JobRun.schedule_id == schedule_id)
        rows = list((await session.execute(query)).scalars())
    assert len({row.scheduled_at for row in rows}) == len(rows), "a fire time recorded twice"
    return {row.scheduled_at: row.status for row in rows if row.scheduled_at is not None}


async def test_a_node_on_a_full_disk_waits_and_then_does_everything(
    small_disk_harness: SchedulerHarness,
) -> None:
    harness = small_disk_harness
    harness.write_prices("KO")
    async with harness.node() as node, harness.client() as client:
        ingest = await harness.enqueue(client, JobKind.INGEST, {"symbol": "KO"}, symbol="KO")

        async def ingested() -> bool:
            return await _status(harness, ingest) is JobStatus.SUCCEEDED

        await harness.wait_for(ingested, within=60, what="the ingest")
        retrain_seconds = await _timed_retrain(harness, client)
        full_for = max(20.0, 2 * retrain_seconds + 5)

        # A schedule firing every second all through the fault, and a training running into it.
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        end = start + timedelta(seconds=int(full_for) + 4)
        await client.add_schedule(
            JobKind.FORECAST.value,
            IntervalTrigger(seconds=1, start_time=start, end_time=end),
            id="tick",
            kwargs={"symbol": "KO"},
            coalesce=CoalescePolicy.all,
        )
        retrain = await harness.enqueue(client, JobKind.RETRAIN, RETRAIN, symbol="KO")

        async def training() -> bool:
            return await _status(harness, retrain) is JobStatus.RUNNING

        await harness.wait_for(training, within=30, what="the retrain to start")
        filler = _fill(Path(str(harness.engine.url.database)).parent)
        await anyio.sleep(full_for)
        # Still running after twice a training's time, and nothing failed.
        assert node.scheduler is not None, "the node's scheduler stopped"
        assert await _status(harness, retrain) is JobStatus.RUNNING
        assert JobStatus.FAILED not in (await _fires(harness, "tick")).values()
        filler.unlink()
        freed = datetime.now(UTC)

        async def all_done() -> bool:
            fires = await _fires(harness, "tick")
            return (
                await _status(harness, retrain) is JobStatus.SUCCEEDED
                and len(fires) == int((end - start).total_seconds()) + 1
                and set(fires.values()) == {JobStatus.SUCCEEDED}
            )

        await harness.wait_for(all_done, within=180, what="the work queued in the fault")
        expected = {
            start + timedelta(seconds=k) for k in range(int((end - start).total_seconds()) + 1)
        }
        assert set(await _fires(harness, "tick")) == expected

        async def beat_after() -> bool:
            async with harness.sessions() as session:
                beats = (await session.execute(select(SchedulerHeartbeat.beat_at))).scalars()
                return any(beat > freed for beat in beats)

        await harness.wait_for(beat_after, within=30, what="a heartbeat after the fault")
        assert node.scheduler is not None
    async with harness.sessions() as session:
        versions = await ModelVersionRepository(session).list(symbol="KO")
    # Both trainings recorded, the one that ended on the full disk included, once each.
    assert len(versions) == 2
    assert retrain in {version.job_id for version in versions}
