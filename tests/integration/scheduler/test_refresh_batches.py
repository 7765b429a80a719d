"""The batched daily refresh on a real node: ``refresh`` splits an exchange's symbols into batch
jobs; each batch fetches, stores, forecasts and evaluates its symbols together; a bad symbol fails
alone; a batch run again forecasts nothing twice."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import select

from db.kinds import EventType, JobKind
from db.models import ForecastRow, JobStatus
from db.repositories import (
    ModelVersionRepository,
    NewModelVersion,
    PriceRepository,
    SymbolRepository,
)
from forecasting.artifacts import ModelArtifact
from forecasting.calendar import DEFAULT_EXCHANGE
from forecasting.sources import CsvSource
from scheduler.conversions import frame_to_records
from tests.integration.scheduler.conftest import HORIZON, LOOKBACK, TINY_TRAINING

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

GOOD = ("DIS", "KO", "JPM")


@pytest.fixture(scope="module")
def tiny_artifact(shared_prices_dir: Any) -> ModelArtifact:
    """One tiny LSTM, trained once, served by every symbol (a forecast costs the same)."""
    from forecasting.model import LSTMForecaster

    bars = CsvSource(shared_prices_dir).fetch("DIS").iloc[-300:]
    model = LSTMForecaster(TINY_TRAINING.model, TINY_TRAINING.train)
    return model.fit(bars).to_artifact(symbol="DIS")


async def seed(harness: Any, symbols: list[str], artifact: ModelArtifact, *, bars: bool) -> None:
    """Watch ``symbols``, store their bars but the newest (``bars``), give each a champion."""
    source = CsvSource(harness.prices_dir)
    for symbol in symbols:
        async with harness.sessions.begin() as session:
            await SymbolRepository(session).add(
                symbol=symbol, exchange=DEFAULT_EXCHANGE, horizon=HORIZON, lookback=LOOKBACK
            )
            if bars:
                records = frame_to_records(source.fetch(symbol))[:-1]
                await PriceRepository(session).upsert(symbol, records)
            versions = ModelVersionRepository(session)
            row = await versions.add(
                NewModelVersion(symbol=symbol, weights=artifact.weights, metadata=artifact.metadata)
            )
            await versions.promote(row.id)


async def forecasts_by_symbol(harness: Any) -> dict[str, Counter[Any]]:
    """Per symbol, how many forecasts (distinct issues) were made from each last bar."""
    async with harness.sessions() as session:
        rows = (
            await session.execute(
                select(
                    ForecastRow.symbol, ForecastRow.issued_at, ForecastRow.last_observed_date
                ).distinct()
            )
        ).all()
    counts: dict[str, Counter[Any]] = {}
    for symbol, _, last in rows:
        counts.setdefault(symbol, Counter())[last] += 1
    return counts


async def test_a_refresh_forecasts_each_symbol_once_and_a_bad_symbol_fails_alone(
    harness: Any, tiny_artifact: ModelArtifact
) -> None:
    for symbol in GOOD:
        harness.write_prices(symbol)
    # NOPE is watched but its source has no file: it fails, the others are refreshed.
    await seed(harness, [*GOOD, "NOPE"], tiny_artifact, bars=False)
    async with harness.sessions.begin() as session:
        for symbol in GOOD:
            records = frame_to_records(CsvSource(harness.prices_dir).fetch(symbol))[:-1]
            await PriceRepository(session).upsert(symbol, records)
        newest = {
            symbol: frame_to_records(CsvSource(harness.prices_dir).fetch(symbol))[-1].date
            for symbol in GOOD
        }
    config = harness.config(refresh_batch_size=2)
    async with harness.node(config), harness.client() as client:
        await harness.enqueue(client, JobKind.REFRESH, {"exchange": "XNYS"}, symbol=None)
        await harness.wait_for(harness.idle, within=60, what="the refresh")
        jobs = await harness.jobs()
        [planned] = [job for job in jobs if job.kind == JobKind.REFRESH]
        batches = [job for job in jobs if job.kind == JobKind.REFRESH_BATCH]
        assert planned.status is JobStatus.SUCCEEDED, planned.error
        assert planned.result is not None and planned.result["symbols"] == 4
        assert len(batches) == 2  # four symbols, two per batch
        assert {job.status for job in batches} == {JobStatus.SUCCEEDED}
        results = [job.result or {} for job in batches]
        assert sum(r["forecast"] for r in results) == len(GOOD)
        assert sum(r["failed_count"] for r in results) == 1
        [failed] = [r["failed"] for r in results if r["failed"]]
        assert list(failed) == ["NOPE"] and "NOPE" in failed["NOPE"]
        # No per-symbol jobs: the whole refresh was three jobs.
        assert {job.kind for job in jobs} == {JobKind.REFRESH, JobKind.REFRESH_BATCH}

        counts = await forecasts_by_symbol(harness)
        assert counts == {symbol: Counter({newest[symbol]: 1}) for symbol in GOOD}
        async with harness.sessions() as session:
            for symbol in GOOD:
                assert await PriceRepository(session).last_date(symbol) == newest[symbol]
        events = await harness.events()
        ready = Counter(e.symbol for e in events if e.type == EventType.FORECAST_READY)
        assert ready == Counter(dict.fromkeys(GOOD, 1))
        ingested = {e.symbol for e in events if e.type == EventType.PRICES_INGESTED}
        assert ingested == set(GOOD)

        # The same batches again (a re-run after a kill, a second fan-out): nothing new.
        for job in batches:
            await harness.enqueue(client, JobKind.REFRESH_BATCH, job.parameters, symbol=None)
        await harness.wait_for(harness.idle, within=60, what="the re-run")
        again = [j for j in await harness.jobs() if j.kind == JobKind.REFRESH_BATCH][2:]
        assert {j.status for j in again} == {JobStatus.SUCCEEDED}
        assert sum((j.result or {})["forecast"] for j in again) == 0
        assert sum((j.result or {})["already_forecast"] for j in again) == len(GOOD)
        assert await forecasts_by_symbol(harness) == counts


async def test_a_refresh_evaluates_matured_forecasts_in_bulk(
    harness: Any, tiny_artifact: ModelArtifact
) -> None:
    """Two sessions arrive one after the other: the second refresh fills in the actual of the
    first refresh's one-step-ahead forecasts."""
    for symbol in GOOD:
        harness.write_prices(symbol, hold_back=1)
    await seed(harness, list(GOOD), tiny_artifact, bars=True)
    async with harness.node(), harness.client() as client:
        await harness.enqueue(client, JobKind.REFRESH, {"exchange": "XNYS"}, symbol=None)
        await harness.wait_for(harness.idle, within=60, what="the first refresh")
        for symbol in GOOD:
            harness.write_prices(symbol)  # the next session arrives
        await harness.enqueue(client, JobKind.REFRESH, {"exchange": "XNYS"}, symbol=None)
        await harness.wait_for(harness.idle, within=60, what="the second refresh")
    batches = [j for j in await harness.jobs() if j.kind == JobKind.REFRESH_BATCH]
    assert [j.status for j in batches] == [JobStatus.SUCCEEDED] * 2
    assert [(j.result or {})["forecast"] for j in batches] == [len(GOOD)] * 2
    assert (batches[1].result or {})["evaluated"] >= len(GOOD)
    async with harness.sessions() as session:
        filled = (
            await session.execute(
                select(ForecastRow.symbol).where(ForecastRow.actual.is_not(None)).distinct()
            )
        ).scalars()
        assert set(filled) == set(GOOD)
    evaluated = {e.symbol for e in await harness.events() if e.type == EventType.FORECAST_EVALUATED}
    assert evaluated == set(GOOD)


async def test_a_symbol_whose_source_readjusted_its_history_is_fetched_whole(
    harness: Any, tiny_artifact: ModelArtifact
) -> None:
    """Stored closes that no longer match the source's (a split adjusted them there): the batch
    stores that symbol's whole history again, and the others only their new session."""
    for symbol in GOOD:
        harness.write_prices(symbol)
    await seed(harness, list(GOOD), tiny_artifact, bars=True)
    async with harness.sessions.begin() as session:
        records = frame_to_records(CsvSource(harness.prices_dir).fetch("KO"))[:-1]
        halved = [replace(r, close=r.close / 2) for r in records]  # before a 2:1 split
        await PriceRepository(session).upsert("KO", halved)
    async with harness.node(), harness.client() as client:
        await harness.enqueue(client, JobKind.REFRESH, {"exchange": "XNYS"}, symbol=None)
        await harness.wait_for(harness.idle, within=60, what="the refresh")
    [batch] = [j for j in await harness.jobs() if j.kind == JobKind.REFRESH_BATCH]
    assert batch.status is JobStatus.SUCCEEDED and (batch.result or {})["forecast"] == len(GOOD)
    ingested = {
        e.symbol: e.payload for e in await harness.events() if e.type == EventType.PRICES_INGESTED
    }
    assert ingested["KO"]["full_refresh"] is True
    assert ingested["KO"]["rows"] == harness.rows
    assert ingested["DIS"]["full_refresh"] is False and ingested["DIS"]["rows"] < 20
    async with harness.sessions() as session:
        stored = await PriceRepository(session).load("KO")
    assert [r.close for r in stored] == [
        r.close for r in frame_to_records(CsvSource(harness.prices_dir).fetch("KO"))
    ]


async def test_a_bulk_registration_backfills_and_forecasts_its_symbols_in_batches(
    harness: Any, tiny_artifact: ModelArtifact
) -> None:
    """``POST /symbols`` with many symbols queues one ``refresh`` per exchange naming them: their
    backfill and first forecast come in batch jobs (no ingest or forecast job per symbol), each
    new symbol's first training is queued, and a symbol the request did not name is left alone."""
    new = ["DIS", "KO", "JPM"]
    for symbol in [*new, "XOM"]:
        harness.write_prices(symbol)
    await seed(harness, ["XOM"], tiny_artifact, bars=True)  # watched before, not in the request
    async with harness.sessions.begin() as session:
        for symbol in new:
            await SymbolRepository(session).add(
                symbol=symbol, exchange=DEFAULT_EXCHANGE, horizon=HORIZON, lookback=LOOKBACK
            )
    config = harness.config(refresh_batch_size=2)

    async def batches_done() -> bool:
        # The forecasts land before a batch queues its first trainings: wait for the batches.
        batches = [job for job in await harness.jobs() if job.kind == JobKind.REFRESH_BATCH]
        return len(batches) == 2 and all(job.finished_at is not None for job in batches)

    async with harness.node(config), harness.client() as client:
        await harness.enqueue(
            client, JobKind.REFRESH, {"exchange": "XNYS", "symbols": new}, symbol=None
        )
        await harness.wait_for(batches_done, within=90, what="the registration's batches")
        jobs = await harness.jobs()

    [planned] = [job for job in jobs if job.kind == JobKind.REFRESH]
    assert planned.status is JobStatus.SUCCEEDED, planned.error
    assert planned.result is not None and planned.result["symbols"] == len(new)
    batches = [job for job in jobs if job.kind == JobKind.REFRESH_BATCH]
    assert sorted(len(job.parameters["symbols"]) for job in batches) == [1, 2]
    assert not [job for job in jobs if job.kind in (JobKind.INGEST, JobKind.FORECAST)]
    trainings = [job for job in jobs if job.kind == JobKind.RETRAIN]
    assert sorted(job.symbol for job in trainings) == sorted(new)
    assert all(job.parameters["params"]["initial"] is True for job in trainings)

    counts = await forecasts_by_symbol(harness)
    assert "XOM" not in counts
    source = CsvSource(harness.prices_dir)
    async with harness.sessions() as session:
        for symbol in new:
            bars = frame_to_records(source.fetch(symbol))
            assert await PriceRepository(session).count(symbol) == len(bars)
            assert counts[symbol] == Counter({bars[-1].date: 1})
            kinds = await session.scalars(
                select(ForecastRow.model_kind).where(ForecastRow.symbol == symbol).distinct()
            )
            assert list(kinds) == ["naive"]  # no model yet: the baseline serves


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_a_node_holds_as_many_batches_at_once_as_its_setting(
    harness: Any, tiny_artifact: ModelArtifact, concurrency: int
) -> None:
    """``refresh_batch_concurrency``: with 1, a node with free job slots still runs its batches
    one after the other (so two nodes share the last batches of a refresh instead of one
    claiming them all); with 3, the same three batches overlap."""
    for symbol in GOOD:
        harness.write_prices(symbol)
    await seed(harness, list(GOOD), tiny_artifact, bars=True)
    config = harness.config(refresh_batch_size=1, refresh_batch_concurrency=concurrency)
    assert config.max_concurrent_jobs >= 3
    async with harness.node(config), harness.client() as client:
        await harness.enqueue(client, JobKind.REFRESH, {"exchange": "XNYS"}, symbol=None)
        await harness.wait_for(harness.idle, within=60, what="the refresh")
    batches = [job for job in await harness.jobs() if job.kind == JobKind.REFRESH_BATCH]
    assert len(batches) == 3
    assert {job.status for job in batches} == {JobStatus.SUCCEEDED}
    spans = sorted((job.started_at, job.finished_at) for job in batches)
    overlapping = sum(1 for earlier, later in pairwise(spans) if later[0] < earlier[1])
    if concurrency == 1:
        assert overlapping == 0, spans
    else:
        assert overlapping >= 1, spans
    counts = await forecasts_by_symbol(harness)
    assert sorted(counts) == sorted(GOOD)
    assert all(list(c.values()) == [1] for c in counts.values()), counts
