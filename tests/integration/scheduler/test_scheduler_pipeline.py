"""A symbol is registered and the scheduler does the rest: backfill, first training, forecasts;
the ``job_runs`` and ``events`` tables tell that story."""

from __future__ import annotations

import pytest

from db.kinds import EventType, JobKind
from db.models import JobRun, JobStatus, ModelStatus, RetrainCadence
from db.repositories import ForecastRepository, ModelVersionRepository, PriceRepository
from forecasting.calendar import is_trading_day
from scheduler.triggers import SessionCloseTrigger

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_registered_symbol_is_ingested_trained_and_forecast(harness) -> None:
    sessions = harness.sessions
    async with harness.node() as node, harness.client() as client:
        await harness.watch(client, "DIS")

        async def lstm_forecast_stored() -> bool:
            async with sessions() as session:
                latest = await ForecastRepository(session).latest("DIS")
            return bool(latest) and latest[0].model_kind == "lstm"

        await harness.wait_for(
            lstm_forecast_stored, within=150, what="a forecast from the trained model"
        )
        identity = node.identity

        async with sessions() as session:
            assert await PriceRepository(session).count("DIS") == harness.rows
            versions = await ModelVersionRepository(session).list(symbol="DIS")
            champion = await ModelVersionRepository(session).champion("DIS")
            latest = await ForecastRepository(session).latest("DIS")
        assert len(versions) == 1
        assert champion is not None and champion.id == versions[0].id
        assert champion.status is ModelStatus.CHAMPION
        assert champion.params["initial"] is True
        # Queued together with the backfill, the training waited for it and used all of it.
        async with sessions() as session:
            assert champion.train_end == await PriceRepository(session).last_date("DIS")
        assert champion.metrics["lstm_mase"] > 0
        # One row per horizon step, from the champion, dated on trading days after the last bar.
        assert [row.step for row in latest] == list(range(1, harness.horizon + 1))
        assert {row.model_version_id for row in latest} == {champion.id}
        assert all(row.target_date > row.last_observed_date for row in latest)
        assert all(is_trading_day(row.target_date) for row in latest)
        assert all(row.lower_95 <= row.lower_80 <= row.upper_80 <= row.upper_95 for row in latest)

        # The schedules the watchlist calls for exist, on the exchange calendar.
        schedules = {s.id: s for s in await client.get_schedules()}
        assert {"refresh:XNYS", "retrain:DIS"} <= set(schedules)
        refresh_trigger = schedules["refresh:XNYS"].trigger
        assert isinstance(refresh_trigger, SessionCloseTrigger)
        assert schedules["retrain:DIS"].trigger.cadence is RetrainCadence.WEEKLY  # type: ignore[attr-defined]
        next_fire = schedules["refresh:XNYS"].next_fire_time
        assert next_fire is not None and is_trading_day(next_fire.date())

    jobs = await harness.jobs()
    by_kind: dict[str, list[JobRun]] = {}
    for job in jobs:
        by_kind.setdefault(job.kind, []).append(job)
    assert len(by_kind[JobKind.INGEST]) == 1
    assert len(by_kind[JobKind.RETRAIN]) == 1
    # A naive forecast right after the backfill, the champion's after the training.
    assert len(by_kind[JobKind.FORECAST]) == 2
    assert len(by_kind[JobKind.EVALUATE]) == 1
    assert len(by_kind[JobKind.SYNC_SCHEDULES]) == 1
    for job in jobs:
        assert job.status is JobStatus.SUCCEEDED, (job.kind, job.error)
        assert job.attempts == 1
        assert job.worker == identity
        assert job.duration_seconds is not None and job.duration_seconds >= 0
    ingest = by_kind[JobKind.INGEST][0]
    assert ingest.result is not None and ingest.result["rows"] == harness.rows
    retrain = by_kind[JobKind.RETRAIN][0]
    assert retrain.parameters == {"symbol": "DIS", "params": {"initial": True}}
    assert retrain.result is not None and retrain.result["promoted"] is True

    events = await harness.events()
    story = [event.type for event in events if event.symbol == "DIS"]
    order = [
        EventType.SYMBOL_ADDED,
        EventType.PRICES_INGESTED,
        EventType.FORECAST_READY,
        EventType.MODEL_TRAINED,
        EventType.MODEL_PROMOTED,
        EventType.FORECAST_READY,
    ]
    positions = []
    start = 0
    for wanted in order:
        position = story.index(wanted.value, start)
        positions.append(position)
        start = position + 1
    assert positions == sorted(positions)
    ready = [event for event in events if event.type == EventType.FORECAST_READY]
    assert [event.payload["model_kind"] for event in ready] == ["naive", "lstm"]
    assert ready[-1].payload["steps"] == harness.horizon
    succeeded = [event for event in events if event.type == EventType.JOB_SUCCEEDED]
    assert {event.payload["job_id"] for event in succeeded} == {job.id for job in jobs}
    assert not [event for event in events if event.type == EventType.JOB_FAILED]


async def test_on_demand_training_of_an_unwatched_symbol_fetches_its_prices(harness) -> None:
    """``POST /train`` accepts a symbol that is not watched (as the original service did): the job
    fetches the bars no ingest keeps, trains and records the version; nothing gets scheduled."""
    harness.write_prices("KO")
    async with harness.node(), harness.client() as client:
        job_id = await harness.enqueue(
            client,
            JobKind.RETRAIN,
            {"symbol": "KO", "params": {"model_name": "ko_v1", "epochs": 1}},
            symbol="KO",
        )

        async def finished() -> bool:
            return await harness.idle()

        await harness.wait_for(finished, within=150, what="the on-demand training")
        schedules = {s.id for s in await client.get_schedules()}

    job = next(j for j in await harness.jobs() if j.id == job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    async with harness.sessions() as session:
        assert await PriceRepository(session).count("KO") == harness.rows
        versions = await ModelVersionRepository(session).list(symbol="KO")
        assert await ForecastRepository(session).latest("KO") == []
    assert [(v.model_name, v.params["model"]["horizon"]) for v in versions] == [
        ("ko_v1", harness.horizon)
    ]
    assert not {s for s in schedules if s.endswith(":KO")}
    assert EventType.PRICES_INGESTED in {e.type for e in await harness.events()}
