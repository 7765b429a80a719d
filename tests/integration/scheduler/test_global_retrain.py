"""The ``retrain_global`` job end to end on a real scheduler node and database: one global LSTM
for the watchlist, every symbol's challenger gated with it as a candidate and recorded like a
``retrain`` job's, then a warm-started rerun; a symbol of another window shape is skipped."""

from __future__ import annotations

import pytest

from db.kinds import JobKind
from db.models import JobStatus
from db.repositories import ModelVersionRepository, PriceRepository, SymbolRepository
from forecasting.bars import read_bars_csv
from forecasting.calendar import DEFAULT_EXCHANGE
from scheduler.conversions import frame_to_records

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _watch(harness, symbol: str, *, horizon: int | None = None) -> None:  # type: ignore[no-untyped-def]
    """A watched symbol with its bars stored (as its backfill would have left them)."""
    bars = read_bars_csv(str(harness.write_prices(symbol)))
    async with harness.sessions.begin() as session:
        await SymbolRepository(session).add(
            symbol=symbol,
            exchange=DEFAULT_EXCHANGE,
            horizon=horizon or harness.horizon,
            lookback=harness.lookback,
        )
        await PriceRepository(session).upsert(symbol, frame_to_records(bars))


async def _run(harness, client, kind: JobKind, kwargs, symbol=None) -> dict:  # type: ignore[no-untyped-def]
    job_id = await harness.enqueue(client, kind, kwargs, symbol=symbol)
    await harness.wait_for(harness.idle, within=900, what=f"the {kind.value} job")
    job = next(j for j in await harness.jobs() if j.id == job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    return dict(job.result or {})


async def test_the_global_retrain_trains_and_records_the_whole_watchlist(harness) -> None:  # type: ignore[no-untyped-def]
    for symbol in ("DIS", "KO"):
        await _watch(harness, symbol)
    await _watch(harness, "SPY", horizon=harness.horizon + 1)
    # A long lease: the job trains for the whole watchlist on a machine shared with other work.
    async with harness.node(harness.config(lease_duration=120.0)), harness.client() as client:
        first = await _run(harness, client, JobKind.RETRAIN_GLOBAL, {"params": {"epochs": 2}})
        assert set(first["models"]) == {"DIS", "KO"}
        assert "SPY" in first["skipped"] and "horizon" in first["skipped"]["SPY"]
        assert first["global_training"]["symbols"] == 2
        assert first["global_training"]["warm_start_epochs"] is None
        second = await _run(
            harness,
            client,
            JobKind.RETRAIN_GLOBAL,
            {"params": {"epochs": 2, "warm_start_epochs": 1}},
        )
    async with harness.sessions() as session:
        versions = {
            s: await ModelVersionRepository(session).list(symbol=s) for s in ("DIS", "KO", "SPY")
        }
    assert [len(versions[s]) for s in ("DIS", "KO", "SPY")] == [2, 2, 0]
    for symbol in ("DIS", "KO"):
        newest = max(versions[symbol], key=lambda v: v.id)
        assert newest.params["global"] is True
        assert newest.params["warm_start_epochs"] == 1
        # The global LSTM was a candidate of the symbol's gate, on the same windows.
        assert "glstm" in newest.backtest["points"]
        assert "glstm_vs_naive" in newest.backtest["decision"]["evidence"]["dm_squared_error"]
        assert second["models"][symbol]["model_version_id"] == newest.id
    # Policy 'always' promotes: each new champion's forecast was queued.
    assert {f"forecast:{s}" for s in ("DIS", "KO")} <= set(first["enqueued"])
