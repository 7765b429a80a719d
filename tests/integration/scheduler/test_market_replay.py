"""The market replay: a static source played back one session at a time. The scheduler ingests,
forecasts and evaluates as it would live, sees no bar after the simulated session, announces each
session (``replay.advanced``) and stops at the end of the data; retraining follows the symbol's
cadence in simulated days."""

from __future__ import annotations

import csv
from datetime import date

import pytest
from sqlalchemy import func, select

from db.contracts import ReplayAdvanced
from db.kinds import EventType, JobKind
from db.models import ForecastRow, JobStatus
from db.repositories import EventRepository, ModelVersionRepository, PriceRepository
from scheduler.config import ReplaySettings
from scheduler.replay import queue_session_jobs
from scheduler.runtime import WorkerRuntime

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SESSIONS = 8


def _dates(harness, symbol: str) -> list[date]:
    with (harness.prices_dir / f"{symbol}.csv").open(encoding="utf-8") as handle:
        return [date.fromisoformat(row["date"]) for row in csv.DictReader(handle)]


async def test_a_replay_ingests_forecasts_and_evaluates_session_by_session(harness) -> None:
    dates = _dates(harness, "DIS")
    start = dates[-1 - SESSIONS]
    config = harness.config(replay=ReplaySettings(sessions=SESSIONS, step_seconds=0.8))

    async with harness.node(config), harness.client() as client:
        await harness.watch(client, "DIS")

        async def finished() -> bool:
            events = await harness.events()
            replayed = [e for e in events if e.type == EventType.REPLAY_ADVANCED.value]
            return bool(replayed) and replayed[-1].payload["finished"] and await harness.idle()

        await harness.wait_for(finished, within=150, what="the end of the replay")

    events = await harness.events()
    replayed = [e.payload for e in events if e.type == EventType.REPLAY_ADVANCED.value]
    assert [date.fromisoformat(p["session"]) for p in replayed] == dates[-1 - SESSIONS :]
    assert [p["finished"] for p in replayed] == [False] * SESSIONS + [True]
    assert replayed[0]["total"] == len(dates)

    # No ingest ever stored a bar after the simulated session announced before it; the backfill
    # stopped at a session of the replay, and the sessions after it brought their bars.
    session_then: date | None = None
    ingested: list[dict] = []
    for event in events:
        if event.type == EventType.REPLAY_ADVANCED.value:
            session_then = date.fromisoformat(event.payload["session"])
        elif event.type == EventType.PRICES_INGESTED.value and event.payload["via"] == "ingest":
            assert session_then is not None
            assert date.fromisoformat(event.payload["last_date"]) <= session_then
            ingested.append(event.payload)
    assert start <= date.fromisoformat(ingested[0]["last_date"]) < dates[-1]
    assert date.fromisoformat(ingested[-1]["last_date"]) == dates[-1]
    assert len(ingested) >= 2
    async with harness.sessions() as session:
        assert await PriceRepository(session).count("DIS") == len(dates)
        evaluated = await session.scalar(
            select(func.count()).select_from(ForecastRow).where(ForecastRow.actual.is_not(None))
        )
        targets = await session.scalar(
            select(func.min(ForecastRow.target_date)).where(ForecastRow.symbol == "DIS")
        )
    # Forecasts issued during the replay matured within it and were scored.
    assert evaluated is not None and evaluated >= 1
    assert targets is not None and targets > start
    jobs = await harness.jobs()
    assert not [job for job in jobs if job.status is not JobStatus.SUCCEEDED], [
        (job.kind, job.error) for job in jobs if job.status is not JobStatus.SUCCEEDED
    ]
    # An ingest still queued when the clock moves is not queued twice (it then fetches both
    # sessions), so a busy machine runs fewer than one per session; never fewer than two.
    assert sum(job.kind == JobKind.INGEST for job in jobs) >= 2


async def test_a_replay_resumes_where_it_stopped(harness) -> None:
    dates = _dates(harness, "DIS")
    config = harness.config(replay=ReplaySettings(sessions=SESSIONS, step_seconds=60))
    async with harness.node(config):

        async def announced() -> bool:
            return any(e.type == EventType.REPLAY_ADVANCED.value for e in await harness.events())

        await harness.wait_for(announced, within=30, what="the replay's first session")
    # The next run starts where the last one stood, not SESSIONS before the end again.
    async with harness.sessions.begin() as session:
        await EventRepository(session).append(
            ReplayAdvanced(
                session=dates[-3],
                index=len(dates) - 3,
                total=len(dates),
                first=dates[0],
                last=dates[-1],
                finished=False,
            )
        )
    async with harness.node(config):

        async def resumed() -> bool:
            events = [
                e for e in await harness.events() if e.type == EventType.REPLAY_ADVANCED.value
            ]
            return len(events) == 3

        await harness.wait_for(resumed, within=30, what="the resumed replay")
    events = [e.payload for e in await harness.events() if e.type == "replay.advanced"]
    assert date.fromisoformat(events[-1]["session"]) == dates[-3]


async def test_retraining_follows_the_cadence_in_simulated_days(harness) -> None:
    """``queue_session_jobs`` on a Friday (the end of the ISO week) queues the weekly retrain of a
    symbol with a model; on a Wednesday only the ingest; never a second one of either."""
    config = harness.config(replay=ReplaySettings(sessions=SESSIONS, step_seconds=3600))
    async with harness.node(config) as node, harness.client() as client:
        await harness.watch(client, "DIS")

        async def has_model() -> bool:
            async with harness.sessions() as session:
                return bool(await ModelVersionRepository(session).list(symbol="DIS", limit=1))

        await harness.wait_for(has_model, within=150, what="the first model")
        await harness.wait_for(harness.idle, within=60, what="the first jobs to finish")
        runtime = _runtime_of(node)
        before = len(await harness.jobs())
        node.scheduler.max_concurrent_jobs = 0  # hold the queued jobs so they stay pending
        await queue_session_jobs(runtime, date(2025, 10, 8), retrain=True)  # a Wednesday
        wednesday = (await harness.jobs())[before:]
        assert [job.kind for job in wednesday] == [JobKind.INGEST]
        await queue_session_jobs(runtime, date(2025, 10, 3), retrain=True)  # a Friday
        friday = (await harness.jobs())[before + 1 :]
        # The ingest of Wednesday is still pending: not queued twice. The retrain is new.
        assert [job.kind for job in friday] == [JobKind.RETRAIN]
        assert friday[0].parameters == {"symbol": "DIS", "params": {}}
        await queue_session_jobs(runtime, date(2025, 10, 3), retrain=True)
        assert len(await harness.jobs()) == before + 2
        node.request_stop(force=True)


def _runtime_of(node) -> WorkerRuntime:
    """The node's runtime (the public lookup, ``current_runtime``, works inside a job only)."""
    from scheduler.runtime import _RUNTIMES

    assert node.scheduler is not None
    return _RUNTIMES[node.scheduler]
