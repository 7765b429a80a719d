"""Schedules follow the watchlist idempotently, every task exists after ``db upgrade``, and a
scheduler that was down runs the missed refresh once, not once per missed close."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler import CoalescePolicy
from apscheduler.triggers.interval import IntervalTrigger

from db.kinds import JobKind
from db.models import RetrainCadence
from db.repositories import SymbolRepository
from forecasting.calendar import DEFAULT_EXCHANGE
from scheduler.config import TaskLimits
from scheduler.schedules import SIGNATURE_KEY, desired_schedules, sync_schedules
from scheduler.triggers import SessionCloseTrigger

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
        await symbols.add(symbol="DIS", exchange=DEFAULT_EXCHANGE, horizon=3, lookback=10)
        await symbols.add(
            symbol="KO",
            exchange=DEFAULT_EXCHANGE,
            horizon=3,
            lookback=10,
            retrain_cadence=RetrainCadence.DAILY,
        )
    async with harness.client() as client:
        # Someone else's schedule on one of our tasks: never touched.
        await client.add_schedule(
            JobKind.EVALUATE.value, IntervalTrigger(hours=1), id="nightly-report"
        )
        # A per-symbol ingest schedule of an older deployment: ours, replaced by the refresh.
        await client.add_schedule(JobKind.INGEST.value, IntervalTrigger(hours=1), id="ingest:KO")
        first = await sync_schedules(client, harness.sessions, config)
        # One refresh for the exchange, whatever the number of its symbols; a retrain each.
        assert sorted(first.added) == ["refresh:XNYS", "retrain:DIS", "retrain:KO"]
        assert first.removed == ["ingest:KO"]
        schedules = {s.id: s for s in await client.get_schedules()}
        assert schedules["refresh:XNYS"].kwargs == {"exchange": "XNYS"}
        assert schedules["retrain:KO"].kwargs == {"symbol": "KO", "params": {}}
        assert schedules["retrain:DIS"].trigger.cadence is RetrainCadence.WEEKLY  # type: ignore[attr-defined]
        assert schedules["retrain:KO"].trigger.cadence is RetrainCadence.DAILY  # type: ignore[attr-defined]
        assert schedules["refresh:XNYS"].coalesce is CoalescePolicy.latest
        assert schedules["refresh:XNYS"].misfire_grace_time == timedelta(
            seconds=config.ingest_misfire_grace
        )

        # Again: nothing changes, and pending fire times survive.
        second = await sync_schedules(client, harness.sessions, config)
        assert (second.added, second.replaced, second.removed) == ([], [], [])
        assert second.unchanged == 3
        again = {s.id: s for s in await client.get_schedules()}
        assert {k: s.next_fire_time for k, s in again.items()} == {
            k: s.next_fire_time for k, s in schedules.items()
        }

        # A changed cadence replaces only that schedule; a removed symbol loses its retrain.
        async with harness.sessions.begin() as session:
            symbols = SymbolRepository(session)
            await symbols.update("KO", retrain_cadence=RetrainCadence.MONTHLY)
            await symbols.deactivate("DIS")
        third = await sync_schedules(client, harness.sessions, config)
        assert third.replaced == ["retrain:KO"]
        assert third.removed == ["retrain:DIS"]
        final = {s.id: s for s in await client.get_schedules()}
        assert set(final) == {"refresh:XNYS", "retrain:KO", "nightly-report"}
        assert final["retrain:KO"].trigger.cadence is RetrainCadence.MONTHLY  # type: ignore[attr-defined]
        assert final["refresh:XNYS"].next_fire_time == schedules["refresh:XNYS"].next_fire_time

        # The exchange's last symbol goes: so does its refresh.
        async with harness.sessions.begin() as session:
            await SymbolRepository(session).deactivate("KO")
        fourth = await sync_schedules(client, harness.sessions, config)
        assert fourth.removed == ["refresh:XNYS", "retrain:KO"]


async def test_a_scheduler_that_was_down_runs_the_missed_refresh_once(harness) -> None:
    config = harness.config(shutdown_timeout=0.5)
    async with harness.sessions.begin() as session:
        watched = await SymbolRepository(session).add(
            symbol="DIS", exchange=DEFAULT_EXCHANGE, horizon=3, lookback=10
        )
    wanted = next(d for d in desired_schedules([watched], config) if d.kind is JobKind.REFRESH)
    # The schedule as a node left it ten days ago: its next fire time is long past.
    ten_days_ago = datetime.now(UTC) - timedelta(days=10)
    stale = SessionCloseTrigger(
        delay=timedelta(seconds=config.ingest_delay), start_time=ten_days_ago
    )
    missed = [f for f in _fire_times(stale, ten_days_ago) if f <= datetime.now(UTC)]
    assert len(missed) >= 5
    async with harness.client() as client:
        await client.add_schedule(
            JobKind.REFRESH.value,
            SessionCloseTrigger(
                delay=timedelta(seconds=config.ingest_delay), start_time=ten_days_ago
            ),
            id="refresh:XNYS",
            kwargs={"exchange": "XNYS"},
            coalesce=CoalescePolicy.latest,
            misfire_grace_time=timedelta(seconds=config.ingest_misfire_grace),
            metadata={SIGNATURE_KEY: wanted.signature},
        )

    async def ingested() -> bool:
        return any(
            job.kind == "refresh_batch" and job.status.value == "succeeded"
            for job in await harness.jobs()
        )

    async with harness.node(config), harness.client() as client:
        await harness.wait_for(ingested, within=30, what="the catch-up refresh")
        schedule = await client.get_schedule("refresh:XNYS")
    jobs = await harness.jobs()
    refreshes = [job for job in jobs if job.kind == "refresh"]
    assert len(refreshes) == 1
    assert refreshes[0].schedule_id == "refresh:XNYS"
    assert refreshes[0].symbol is None  # an exchange's schedule, not a symbol's
    assert refreshes[0].scheduled_at == missed[-1]  # the latest missed close, not the first
    [batch] = [job for job in jobs if job.kind == "refresh_batch"]
    assert batch.result is not None and batch.result["rows"] == harness.rows
    assert batch.result["forecast"] == 1
    # No model and no training on its way: the batch queued the first one itself.
    assert set(batch.result["enqueued"]) == {"DIS"}
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
        await symbols.add(symbol="DIS", exchange=DEFAULT_EXCHANGE, horizon=3, lookback=10)
        await symbols.add(symbol="ODD", exchange="XXXX", horizon=3, lookback=10)
    async with harness.client() as client:
        report = await sync_schedules(client, harness.sessions, harness.config())
        scheduled = {s.id for s in await client.get_schedules()}
    assert sorted(report.added) == ["refresh:XNYS", "retrain:DIS"]
    assert set(report.failed) == {"refresh:XXXX", "retrain:ODD"}
    assert "unknown exchange 'XXXX'" in report.failed["refresh:XXXX"]
    assert scheduled == {"refresh:XNYS", "retrain:DIS"}


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
