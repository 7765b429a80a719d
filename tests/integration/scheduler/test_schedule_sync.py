"""Schedules follow the watchlist idempotently, every task exists after ``db upgrade``, and a
scheduler that was down runs the missed ingest once, not once per missed close."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler import CoalescePolicy
from apscheduler.triggers.interval import IntervalTrigger

from db.kinds import JobKind
from db.models import RetrainCadence
from db.repositories import SymbolRepository
from scheduler.config import TaskLimits
from scheduler.schedules import SIGNATURE_KEY, desired_schedules, sync_schedules
from scheduler.triggers import Cadence, SessionCloseTrigger

pytestmark = pytest.mark.anyio


async def test_db_upgrade_configures_every_task(harness) -> None:
    async with harness.client() as client:
        tasks = {task.id: task for task in await client.get_tasks()}
    limits = TaskLimits()
    assert set(tasks) == {kind.value for kind in JobKind}
    for kind in JobKind:
        task = tasks[kind.value]
        assert task.func == f"scheduler.tasks:{kind.value}"
        assert task.job_executor == "async"
        assert task.max_running_jobs == getattr(limits, kind.value)


async def test_schedules_follow_the_watchlist(harness) -> None:
    config = harness.config()
    async with harness.sessions.begin() as session:
        symbols = SymbolRepository(session)
        await symbols.add(symbol="DIS", horizon=3, lookback=10)
        await symbols.add(symbol="KO", horizon=3, lookback=10, retrain_cadence=RetrainCadence.DAILY)
    async with harness.client() as client:
        # Someone else's schedule on one of our tasks: never touched.
        await client.add_schedule(
            JobKind.EVALUATE.value, IntervalTrigger(hours=1), id="nightly-report"
        )
        first = await sync_schedules(client, harness.sessions, config)
        assert sorted(first.added) == ["ingest:DIS", "ingest:KO", "retrain:DIS", "retrain:KO"]
        schedules = {s.id: s for s in await client.get_schedules()}
        assert schedules["ingest:KO"].kwargs == {"symbol": "KO"}
        assert schedules["retrain:KO"].kwargs == {"symbol": "KO", "params": {}}
        assert schedules["retrain:DIS"].trigger.cadence is Cadence.WEEKLY  # type: ignore[attr-defined]
        assert schedules["retrain:KO"].trigger.cadence is Cadence.DAILY  # type: ignore[attr-defined]
        assert schedules["ingest:DIS"].coalesce is CoalescePolicy.latest
        assert schedules["ingest:DIS"].misfire_grace_time == timedelta(
            seconds=config.ingest_misfire_grace
        )

        # Again: nothing changes, and pending fire times survive.
        second = await sync_schedules(client, harness.sessions, config)
        assert (second.added, second.replaced, second.removed) == ([], [], [])
        assert second.unchanged == 4
        again = {s.id: s for s in await client.get_schedules()}
        assert {k: s.next_fire_time for k, s in again.items()} == {
            k: s.next_fire_time for k, s in schedules.items()
        }

        # A changed cadence replaces only that schedule; a removed symbol loses both.
        async with harness.sessions.begin() as session:
            symbols = SymbolRepository(session)
            await symbols.update("KO", retrain_cadence=RetrainCadence.MONTHLY)
            await symbols.deactivate("DIS")
        third = await sync_schedules(client, harness.sessions, config)
        assert third.replaced == ["retrain:KO"]
        assert third.removed == ["ingest:DIS", "retrain:DIS"]
        final = {s.id: s for s in await client.get_schedules()}
        assert set(final) == {"ingest:KO", "retrain:KO", "nightly-report"}
        assert final["retrain:KO"].trigger.cadence is Cadence.MONTHLY  # type: ignore[attr-defined]


async def test_a_scheduler_that_was_down_runs_the_missed_ingest_once(harness) -> None:
    config = harness.config(shutdown_timeout=0.5)
    async with harness.sessions.begin() as session:
        watched = await SymbolRepository(session).add(symbol="DIS", horizon=3, lookback=10)
    wanted = next(d for d in desired_schedules([watched], config) if d.kind is JobKind.INGEST)
    # The schedule as a node left it ten days ago: its next fire time is long past.
    ten_days_ago = datetime.now(UTC) - timedelta(days=10)
    stale = SessionCloseTrigger(
        delay=timedelta(seconds=config.ingest_delay), start_time=ten_days_ago
    )
    missed = [f for f in _fire_times(stale, ten_days_ago) if f <= datetime.now(UTC)]
    assert len(missed) >= 5
    async with harness.client() as client:
        await client.add_schedule(
            JobKind.INGEST.value,
            SessionCloseTrigger(
                delay=timedelta(seconds=config.ingest_delay), start_time=ten_days_ago
            ),
            id="ingest:DIS",
            kwargs={"symbol": "DIS"},
            coalesce=CoalescePolicy.latest,
            misfire_grace_time=timedelta(seconds=config.ingest_misfire_grace),
            metadata={SIGNATURE_KEY: wanted.signature},
        )

    async def ingested() -> bool:
        return any(
            job.kind == "ingest" and job.status.value == "succeeded" for job in await harness.jobs()
        )

    async with harness.node(config), harness.client() as client:
        await harness.wait_for(ingested, within=30, what="the catch-up ingest")
        schedule = await client.get_schedule("ingest:DIS")
    ingests = [job for job in await harness.jobs() if job.kind == "ingest"]
    assert len(ingests) == 1
    assert ingests[0].schedule_id == "ingest:DIS"
    assert ingests[0].scheduled_at == missed[-1]  # the latest missed close, not the first
    assert ingests[0].result is not None and ingests[0].result["rows"] == harness.rows
    # No model and no training on its way: the ingest queued the first one itself.
    assert set(ingests[0].result["enqueued"]) == {"forecast", "evaluate", "retrain"}
    assert schedule.next_fire_time is not None
    assert schedule.next_fire_time > datetime.now(UTC)


def _fire_times(trigger: SessionCloseTrigger, start: datetime) -> list[datetime]:
    fires: list[datetime] = []
    while (fire := trigger.next()) is not None and fire <= datetime.now(UTC) + timedelta(days=7):
        fires.append(fire)
    assert fires and fires[0] > start
    return fires


async def test_one_unschedulable_symbol_does_not_block_the_others(harness) -> None:
    async with harness.sessions.begin() as session:
        symbols = SymbolRepository(session)
        await symbols.add(symbol="DIS", horizon=3, lookback=10)
        await symbols.add(symbol="ODD", horizon=3, lookback=10, exchange="XXXX")
    async with harness.client() as client:
        report = await sync_schedules(client, harness.sessions, harness.config())
        scheduled = {s.id for s in await client.get_schedules()}
    assert sorted(report.added) == ["ingest:DIS", "retrain:DIS"]
    assert set(report.failed) == {"ingest:ODD", "retrain:ODD"}
    assert "unknown exchange calendar 'XXXX'" in report.failed["ingest:ODD"]
    assert scheduled == {"ingest:DIS", "retrain:DIS"}


async def test_a_fire_time_past_its_grace_is_recorded_as_missed(harness) -> None:
    fired = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    async with harness.client() as client:
        await client.add_schedule(
            JobKind.EVALUATE.value,
            IntervalTrigger(hours=1, start_time=fired),
            id="evaluate:DIS",
            kwargs={"symbol": "DIS"},
            misfire_grace_time=timedelta(seconds=1),
        )

    async def recorded() -> bool:
        return any(job.status.value == "missed" for job in await harness.jobs())

    async with harness.node():
        await harness.wait_for(recorded, within=20, what="the missed fire to be recorded")
    [job] = await harness.jobs()
    assert (job.kind, job.symbol, job.schedule_id) == ("evaluate", "DIS", "evaluate:DIS")
    assert job.scheduled_at == fired
    assert job.attempts == 0 and job.started_at is None
    assert job.error is not None and "missed its start deadline" in job.error
    [event] = [e for e in await harness.events() if e.type == "job.failed"]
    assert event.payload["status"] == "missed" and event.payload["job_id"] == job.id
