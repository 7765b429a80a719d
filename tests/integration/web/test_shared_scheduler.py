"""The all-in-one mode: the API enqueues through a scheduler already running in its process
(``create_app(config, scheduler=...)``), so both share one event broker."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest
from apscheduler import AsyncScheduler
from litestar.testing import AsyncTestClient

from db.engine import create_async_db_engine
from db.jobstore import create_data_store, create_event_broker
from stockcast.schema import head_revision
from web.app import create_app
from web.config import WebConfig

pytestmark = pytest.mark.anyio


async def test_jobs_go_through_the_shared_scheduler(
    api_database_url: str, prices_dir: Path, auth: dict[str, str]
) -> None:
    config = WebConfig(
        database_url=api_database_url,
        expected_revision=head_revision(),
        api_keys=(auth["X-API-Key"],),
        source=f"csv:{prices_dir}",
    )
    engine = create_async_db_engine(api_database_url)
    try:
        async with (
            AsyncScheduler(
                create_data_store(engine), create_event_broker(api_database_url)
            ) as scheduler,
            AsyncTestClient(create_app(config, scheduler=scheduler)) as client,
        ):
            response = await client.post("/train", json={"symbol": "DIS"}, headers=auth)
            assert response.status_code == 202
            job_id = UUID(response.json()["job"]["id"])
            queued = {job.id: job for job in await scheduler.get_jobs()}
            assert queued[job_id].task_id == "retrain"
            assert queued[job_id].kwargs == {"symbol": "DIS", "params": {}}
            recorded = await client.get(f"/jobs/{job_id}")
            assert recorded.json()["status"] == "queued"
    finally:
        await engine.dispose()
