"""The optional ``retrain_global`` schedule: registered by a schedule sync when
``global_retrain_cadence`` is set (on the default exchange's closes at that cadence), replaced when
the cadence changes, removed when it is unset; per-symbol schedules and others' are untouched.

Nothing trains: the schedule is read back from APScheduler's data store, never fired.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from apscheduler import CoalescePolicy
from apscheduler.triggers.interval import IntervalTrigger

from db.contracts import RetrainGlobalArguments, decode_arguments
from db.kinds import JobKind
from db.models import RetrainCadence
from db.repositories import SymbolRepository
from forecasting.calendar import DEFAULT_EXCHANGE, last_closed_session
from scheduler.schedules import GLOBAL_RETRAIN_SCHEDULE_ID, sync_schedules
from scheduler.triggers import SessionCloseTrigger, session_ends_period

pytestmark = pytest.mark.anyio


async def test_the_setting_adds_replaces_and_removes_the_global_schedule(harness) -> None:
    async with harness.sessions.begin() as session:
        await SymbolRepository(session).add(
            symbol="DIS", exchange=DEFAULT_EXCHANGE, horizon=3, lookback=10
        )
    weekly = harness.config(global_retrain_cadence=RetrainCadence.WEEKLY)
    async with harness.client() as client:
        await client.add_schedule(
            JobKind.EVALUATE.value, IntervalTrigger(hours=1), id="nightly-report"
        )
        off = await sync_schedules(client, harness.sessions, harness.config())
        assert GLOBAL_RETRAIN_SCHEDULE_ID not in off.added

        added = await sync_schedules(client, harness.sessions, weekly)
        assert added.added == [GLOBAL_RETRAIN_SCHEDULE_ID]
        schedule = await client.get_schedule(GLOBAL_RETRAIN_SCHEDULE_ID)
        assert schedule.task_id == JobKind.RETRAIN_GLOBAL.value
        assert isinstance(
            decode_arguments(JobKind.RETRAIN_GLOBAL, schedule.kwargs), RetrainGlobalArguments
        )
        assert schedule.kwargs == {"params": {}}
        trigger = schedule.trigger
        assert isinstance(trigger, SessionCloseTrigger)
        assert (trigger.exchange, trigger.cadence) == (DEFAULT_EXCHANGE, RetrainCadence.WEEKLY)
        assert trigger.delay == timedelta(seconds=weekly.retrain_delay)
        assert schedule.coalesce is CoalescePolicy.latest
        assert schedule.misfire_grace_time == timedelta(seconds=weekly.retrain_misfire_grace)
        # It fires after the last session of a week, never mid-week.
        assert schedule.next_fire_time is not None
        session_day = last_closed_session(schedule.next_fire_time, DEFAULT_EXCHANGE)
        assert session_ends_period(session_day, RetrainCadence.WEEKLY, DEFAULT_EXCHANGE)

        again = await sync_schedules(client, harness.sessions, weekly)
        assert (again.added, again.replaced, again.removed) == ([], [], [])
        unchanged = await client.get_schedule(GLOBAL_RETRAIN_SCHEDULE_ID)
        assert unchanged.next_fire_time == schedule.next_fire_time

        monthly = harness.config(global_retrain_cadence=RetrainCadence.MONTHLY)
        changed = await sync_schedules(client, harness.sessions, monthly)
        assert changed.replaced == [GLOBAL_RETRAIN_SCHEDULE_ID]
        replaced = await client.get_schedule(GLOBAL_RETRAIN_SCHEDULE_ID)
        assert replaced.trigger.cadence is RetrainCadence.MONTHLY  # type: ignore[attr-defined]

        removed = await sync_schedules(client, harness.sessions, harness.config())
        assert removed.removed == [GLOBAL_RETRAIN_SCHEDULE_ID]
        remaining = {s.id for s in await client.get_schedules()}
        assert remaining == {"refresh:XNYS", "retrain:DIS", "nightly-report"}


async def test_a_node_started_with_the_setting_registers_the_schedule(harness) -> None:
    config = harness.config(global_retrain_cadence=RetrainCadence.MONTHLY, shutdown_timeout=0.5)
    async with harness.node(config):
        pass
    async with harness.client() as client:
        schedules = {s.id: s for s in await client.get_schedules()}
    # The watchlist is empty: no per-symbol schedule, but the global one is there all the same.
    assert GLOBAL_RETRAIN_SCHEDULE_ID in schedules
    assert schedules[GLOBAL_RETRAIN_SCHEDULE_ID].trigger.cadence is RetrainCadence.MONTHLY  # type: ignore[attr-defined]
    assert not any(s.startswith(("refresh:", "retrain:")) for s in schedules)
