"""A live node's running job whose lease lapsed (its extensions failed while the database could
not be written: a full disk, a lock longer than the lease) is still the node's job: clean-up does
not release it as ``abandoned``, and its own release at the end records it once. Before
``db.apscheduler_workarounds`` item 14 the node's own clean-up abandoned it, and the job's release
then raised ``IntegrityError`` out of the scheduler. The lapse is made directly in APScheduler's
``jobs`` table, so the story does not depend on how fast a disk fills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from db.jobstore import create_data_store
from db.kinds import JobKind
from db.models import JobRun, JobStatus
from tests.integration.scheduler.conftest import SchedulerHarness

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _status(harness: SchedulerHarness, job_id: str) -> JobStatus | None:
    async with harness.sessions() as session:
        row = await session.get(JobRun, job_id, populate_existing=True)
        return row.status if row else None


async def _lapse_leases(harness: SchedulerHarness) -> int:
    """Put every held job's lease in the past, as failed extensions would have left it."""
    jobs = create_data_store(harness.engine).get_table_definitions().tables["jobs"]
    lapsed = datetime.now(UTC) - timedelta(seconds=1)
    async with harness.engine.begin() as connection:
        result = await connection.execute(
            jobs.update().where(jobs.c.acquired_by.is_not(None)).values(acquired_until=lapsed)
        )
    return int(result.rowcount)


async def test_a_live_nodes_job_with_a_lapsed_lease_is_not_abandoned(
    harness: SchedulerHarness,
) -> None:
    harness.write_prices("KO")
    async with harness.node() as node, harness.client() as client:
        ingest = await harness.enqueue(client, JobKind.INGEST, {"symbol": "KO"}, symbol="KO")

        async def ingested() -> bool:
            return await _status(harness, ingest) is JobStatus.SUCCEEDED

        await harness.wait_for(ingested, within=60, what="the ingest")
        retrain = await harness.enqueue(
            client, JobKind.RETRAIN, {"symbol": "KO", "params": {"epochs": 200}}, symbol="KO"
        )

        async def running() -> bool:
            return await _status(harness, retrain) is JobStatus.RUNNING

        await harness.wait_for(running, within=30, what="the retrain to start")
        assert await _lapse_leases(harness) == 1
        # Three clean-ups of the node (every 2 s): the job trains on (or has just ended).
        await anyio.sleep(3 * harness.config().cleanup_interval)
        assert await _status(harness, retrain) in (JobStatus.RUNNING, JobStatus.SUCCEEDED)

        async def succeeded() -> bool:
            return await _status(harness, retrain) is JobStatus.SUCCEEDED

        await harness.wait_for(succeeded, within=300, what="the retrain to finish")
        assert node.scheduler is not None, "the node's scheduler stopped"
    async with harness.sessions() as session:
        row = await session.get(JobRun, retrain)
    assert row is not None and row.attempts == 1 and row.worker == node.identity
