"""Failures leave the service as it was: a source that is down is retried with backoff and then
recorded as failed; a permanent error is not retried; a training process killed mid-run leaves
the champion and the latest forecast in place, and the next retrain works."""

from __future__ import annotations

import os
import signal
from dataclasses import replace

import anyio
import psutil
import pytest

from db.kinds import EventType, JobKind
from db.models import JobRun, JobStatus
from db.repositories import (
    ForecastRepository,
    JobRepository,
    ModelVersionRepository,
    PriceRepository,
    SymbolRepository,
)
from forecasting.calendar import DEFAULT_EXCHANGE

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _job(harness, job_id: str) -> JobRun:
    async with harness.sessions() as session:
        return await JobRepository(session).get(job_id)


async def _finished(harness, job_id: str) -> bool:
    return (await _job(harness, job_id)).status not in (JobStatus.QUEUED, JobStatus.RUNNING)


async def _latest_forecast(harness, symbol: str) -> tuple[object, int | None]:
    async with harness.sessions() as session:
        latest = await ForecastRepository(session).latest(symbol)
    assert latest, "a forecast was expected"
    return latest[0].issued_at, latest[0].model_version_id


async def _ready_symbol(harness, client, symbol: str = "DIS") -> None:
    """Watch ``symbol`` and let the first ingest, training and forecasts finish."""
    await harness.watch(client, symbol)

    async def champion_forecast() -> bool:
        async with harness.sessions() as session:
            latest = await ForecastRepository(session).latest(symbol)
        return bool(latest) and latest[0].model_kind == "lstm" and await harness.idle()

    await harness.wait_for(champion_forecast, within=150, what=f"{symbol} to be ready")


async def test_a_source_that_is_down_is_retried_then_recorded_failed(harness) -> None:
    harness.write_prices("DIS", hold_back=5)
    async with harness.node() as node, harness.client() as client:
        await _ready_symbol(harness, client)
        before = await _latest_forecast(harness, "DIS")

        # The source's directory disappears: every fetch fails with a transient error.
        hidden = harness.prices_dir.with_name("prices-offline")
        harness.prices_dir.rename(hidden)
        failing = await harness.enqueue(client, JobKind.INGEST, {"symbol": "DIS"}, symbol="DIS")
        await harness.wait_for(lambda: _finished(harness, failing), within=30, what="the ingest")
        job = await _job(harness, failing)
        assert job.status is JobStatus.FAILED
        assert job.attempts == harness.config().retry.max_attempts
        assert job.error is not None
        assert "SourceUnavailableError" in job.error and "cannot list the directory" in job.error
        # Nothing changed: the previous forecast is still the latest, and nothing was queued.
        assert await _latest_forecast(harness, "DIS") == before
        assert await harness.idle()
        failures = [e for e in await harness.events() if e.type == EventType.JOB_FAILED.value]
        assert [e.payload["job_id"] for e in failures] == [failing]
        assert failures[0].payload["error"] == job.error
        assert failures[0].payload["attempts"] == job.attempts
        hidden.rename(harness.prices_dir)
        assert node.identity == job.worker


async def test_a_transient_failure_recovers_on_retry_and_new_bars_are_forecast(harness) -> None:
    harness.write_prices("DIS", hold_back=5)
    slow_retry = replace(harness.config().retry, initial_delay=1.0, max_attempts=5)
    async with harness.node(harness.config(retry=slow_retry)), harness.client() as client:
        await _ready_symbol(harness, client)
        before = await _latest_forecast(harness, "DIS")

        hidden = harness.prices_dir.with_name("prices-offline")
        harness.prices_dir.rename(hidden)
        job_id = await harness.enqueue(client, JobKind.INGEST, {"symbol": "DIS"}, symbol="DIS")

        async def retrying() -> bool:
            return (await _job(harness, job_id)).attempts >= 2

        await harness.wait_for(retrying, within=20, what="a retry to be recorded")
        retried = await _job(harness, job_id)
        assert retried.status is JobStatus.RUNNING
        assert retried.error is not None and retried.error.startswith("attempt 1 failed")
        # The source comes back, with five new sessions, before the next try.
        hidden.rename(harness.prices_dir)
        harness.write_prices("DIS")

        await harness.wait_for(lambda: _finished(harness, job_id), within=30, what="the ingest")
        await harness.wait_for(harness.idle, within=30, what="the follow-up jobs")
        job = await _job(harness, job_id)
        assert job.status is JobStatus.SUCCEEDED
        assert job.attempts >= 2
        assert job.error is None
        assert job.result is not None and job.result["rows"] >= 5
        assert set(job.result["enqueued"]) == {"forecast", "evaluate"}
        issued_at, _ = await _latest_forecast(harness, "DIS")
        assert issued_at > before[0]  # type: ignore[operator]


async def test_permanent_failures_are_not_retried(harness) -> None:
    async with harness.sessions.begin() as session:
        await SymbolRepository(session).add(
            symbol="ZZZZ", exchange=DEFAULT_EXCHANGE, horizon=3, lookback=10
        )
    async with harness.node(), harness.client() as client:
        unknown = await harness.enqueue(client, JobKind.INGEST, {"symbol": "ZZZZ"}, symbol="ZZZZ")
        invalid = await harness.enqueue(
            client, JobKind.INGEST, {"symbol": "../etc/passwd"}, symbol=None
        )
        bad_params = await harness.enqueue(
            client, JobKind.RETRAIN, {"symbol": "ZZZZ", "params": {"epochs": 0}}, symbol="ZZZZ"
        )
        not_watched = await harness.enqueue(
            client, JobKind.FORECAST, {"symbol": "QQQQ"}, symbol="QQQQ"
        )
        for job_id in (unknown, invalid, bad_params, not_watched):
            await harness.wait_for(lambda j=job_id: _finished(harness, j), within=20, what=job_id)

    missing = await _job(harness, unknown)
    assert missing.status is JobStatus.FAILED
    assert missing.attempts == 1
    assert missing.error is not None and missing.error.startswith("UnknownSymbolError")
    refused = await _job(harness, invalid)
    assert refused.status is JobStatus.FAILED
    assert refused.attempts == 1
    assert refused.symbol is None
    assert refused.error is not None and refused.error.startswith("InvalidSymbolError")
    params = await _job(harness, bad_params)
    assert params.status is JobStatus.FAILED
    assert params.attempts == 1
    assert params.error is not None and "TrainConfig.epochs" in params.error
    skipped = await _job(harness, not_watched)
    assert skipped.status is JobStatus.SUCCEEDED
    assert skipped.result == {"skipped": "QQQQ is not on the watchlist"}
    async with harness.sessions() as session:
        assert await PriceRepository(session).count("ZZZZ") == 0


def _training_children() -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if "anyio.to_process" in " ".join(child.cmdline())
    ]


async def _kill_busy_training_child(within: float) -> int:
    """SIGKILL the worker process that is burning CPU (training), not an idle one."""
    deadline = anyio.current_time() + within
    while anyio.current_time() < deadline:
        children = _training_children()
        before = {child.pid: sum(child.cpu_times()[:2]) for child in children}
        await anyio.sleep(0.5)
        for child in children:
            try:
                busy = sum(child.cpu_times()[:2]) - before[child.pid] > 0.2
            except psutil.NoSuchProcess:
                continue
            if busy:
                os.kill(child.pid, signal.SIGKILL)
                return child.pid
    raise AssertionError("no training process got busy")


async def test_a_training_process_killed_mid_run_changes_nothing(harness) -> None:
    harness.write_prices("DIS", rows=2600)
    tiny = harness.config().training
    training = replace(
        tiny,
        model=replace(tiny.model, hidden_size=64, num_layers=2),
        train=replace(tiny.train, max_history=2520),
    )
    async with harness.node(harness.config(training=training)), harness.client() as client:
        await _ready_symbol(harness, client)
        async with harness.sessions() as session:
            champion = await ModelVersionRepository(session).champion("DIS")
            versions = len(await ModelVersionRepository(session).list(symbol="DIS"))
        assert champion is not None
        forecast_before = await _latest_forecast(harness, "DIS")

        doomed = await harness.enqueue(
            client, JobKind.RETRAIN, {"symbol": "DIS", "params": {"epochs": 500}}, symbol="DIS"
        )
        await _kill_busy_training_child(within=60)
        await harness.wait_for(lambda: _finished(harness, doomed), within=30, what="the retrain")
        job = await _job(harness, doomed)
        assert job.status is JobStatus.FAILED
        assert job.attempts == 1
        assert job.error is not None and "training process for DIS died" in job.error
        async with harness.sessions() as session:
            assert (await ModelVersionRepository(session).champion("DIS")).id == champion.id  # type: ignore[union-attr]
            assert len(await ModelVersionRepository(session).list(symbol="DIS")) == versions
        assert await _latest_forecast(harness, "DIS") == forecast_before

        # The next retrain works (a fresh training process) and its model serves.
        next_job = await harness.enqueue(
            client, JobKind.RETRAIN, {"symbol": "DIS", "params": {"epochs": 1}}, symbol="DIS"
        )
        await harness.wait_for(lambda: _finished(harness, next_job), within=120, what="retrain")
        await harness.wait_for(harness.idle, within=30, what="the forecast after it")
        assert (await _job(harness, next_job)).status is JobStatus.SUCCEEDED
        async with harness.sessions() as session:
            new_champion = await ModelVersionRepository(session).champion("DIS")
        assert new_champion is not None and new_champion.id != champion.id
        assert (await _latest_forecast(harness, "DIS"))[1] == new_champion.id
