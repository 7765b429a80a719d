"""The contract between the API and the scheduler, as the database sees it: a job announces itself
with one ``job.queued`` event whoever queued it, and ``prices.ingested`` has one shape whoever
stored the bars."""

from __future__ import annotations

import pytest

from db.contracts import JobQueued, PricesIngested, decode_payload
from db.kinds import EventType, JobKind
from db.models import JobStatus
from db.repositories import JobRepository, SymbolRepository
from forecasting.calendar import DEFAULT_EXCHANGE
from web.errors import InsufficientPricesError
from web.services.prices import PriceRefresher

pytestmark = pytest.mark.anyio


async def _watch_without_training(harness, symbol: str) -> None:
    """A watched symbol whose first training is already pending, so an ingest queues only the
    forecast and the evaluation (no training in this test)."""
    async with harness.sessions.begin() as session:
        await SymbolRepository(session).add(
            symbol=symbol, exchange=DEFAULT_EXCHANGE, horizon=harness.horizon, lookback=10
        )
        await JobRepository(session).record_queued(
            job_id=f"pending-retrain-{symbol}", kind=JobKind.RETRAIN.value, symbol=symbol
        )


async def test_a_job_the_scheduler_queues_announces_itself_like_one_the_api_queues(
    harness,
) -> None:
    await _watch_without_training(harness, "DIS")
    async with harness.node(), harness.client() as client:
        ingest = await harness.enqueue(client, JobKind.INGEST, {"symbol": "DIS"}, symbol="DIS")

        async def follow_ups_done() -> bool:
            jobs = [job for job in await harness.jobs() if job.kind in ("forecast", "evaluate")]
            return len(jobs) == 2 and all(job.status is JobStatus.SUCCEEDED for job in jobs)

        await harness.wait_for(follow_ups_done, within=60, what="the ingest's follow-up jobs")

    jobs = {job.id: job for job in await harness.jobs() if not job.id.startswith("pending-")}
    assert sorted(job.kind for job in jobs.values()) == ["evaluate", "forecast", "ingest"]
    queued = [
        (event.symbol, decode_payload(event.type, event.payload))
        for event in await harness.events()
        if event.type == EventType.JOB_QUEUED
    ]
    # The ingest came in through the API's path, its forecast and evaluation from the worker
    # that ran it: each announced exactly once, in the same shape.
    assert sorted(payload.job_id for _, payload in queued) == sorted(jobs)
    for symbol, payload in queued:
        assert isinstance(payload, JobQueued)
        assert (symbol, payload.kind) == ("DIS", jobs[payload.job_id].kind)
    assert ingest in jobs


async def test_prices_ingested_has_one_shape_from_the_ingest_job_and_the_api(harness) -> None:
    await _watch_without_training(harness, "DIS")
    harness.write_prices("KO")
    async with harness.node(), harness.client() as client:
        ingest = await harness.enqueue(client, JobKind.INGEST, {"symbol": "DIS"}, symbol="DIS")
        await harness.wait_for(
            lambda: _succeeded(harness, ingest), within=60, what="the ingest job"
        )
    # The API tops up an unwatched symbol's prices for an on-demand prediction. Asked for more
    # history than the file holds, it stores what there is (and announces it), then refuses.
    refresher = PriceRefresher(
        harness.sessions,
        source_spec=f"csv:{harness.prices_dir}",
        timeout_s=30.0,
        cooldown_s=0.0,
    )
    with pytest.raises(InsufficientPricesError):
        await refresher.load("KO", need_rows=5 * harness.rows, exchange=DEFAULT_EXCHANGE)

    stored = [event for event in await harness.events() if event.type == EventType.PRICES_INGESTED]
    payloads = {event.symbol: decode_payload(event.type, event.payload) for event in stored}
    assert set(payloads) == {"DIS", "KO"}
    by_job, by_api = payloads["DIS"], payloads["KO"]
    assert isinstance(by_job, PricesIngested) and isinstance(by_api, PricesIngested)
    assert (by_job.via, by_job.job_id, by_job.rows) == ("ingest", ingest, harness.rows)
    assert (by_api.via, by_api.job_id) == ("predict", None)
    assert by_job.source == by_api.source == "csv"
    for event in stored:
        assert set(event.payload) == set(PricesIngested.__struct_fields__)


async def _succeeded(harness, job_id: str) -> bool:
    async with harness.sessions() as session:
        row = await JobRepository(session).get(job_id, refresh=True)
    return row.status is JobStatus.SUCCEEDED
