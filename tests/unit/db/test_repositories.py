"""The repositories against real databases (each test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import ForecastReady, SymbolAdded, decode_payload
from db.models import JobStatus, ModelStatus, RetrainCadence
from db.repositories import (
    BarRecord,
    EventRepository,
    ForecastRepository,
    ForecastStepRecord,
    JobNotFoundError,
    JobRepository,
    ModelVersionRepository,
    NewModelVersion,
    PriceRepository,
    SymbolAlreadyWatchedError,
    SymbolNotFoundError,
    SymbolRepository,
)
from forecasting.calendar import DEFAULT_EXCHANGE

pytestmark = pytest.mark.anyio

Sessions = async_sessionmaker[AsyncSession]


def _bar(day: date, close: float) -> BarRecord:
    return BarRecord(
        date=day,
        open=close,
        high=close + 1,
        low=close - 1,
        close=close,
        adj_close=None,
        volume=1000.0,
    )


async def test_watchlist_add_get_update_deactivate(sessions: Sessions) -> None:
    async with sessions() as session, session.begin():
        repo = SymbolRepository(session)
        await repo.add(symbol="DIS", exchange=DEFAULT_EXCHANGE, horizon=5, lookback=60)
        with pytest.raises(SymbolAlreadyWatchedError):
            await repo.add(symbol="DIS", exchange=DEFAULT_EXCHANGE, horizon=5, lookback=60)
    async with sessions() as session, session.begin():
        repo = SymbolRepository(session)
        row = await repo.update("DIS", horizon=10, retrain_cadence=RetrainCadence.DAILY)
        assert (row.horizon, row.retrain_cadence) == (10, RetrainCadence.DAILY)
        await repo.deactivate("DIS")
    async with sessions() as session, session.begin():
        repo = SymbolRepository(session)
        assert await repo.list() == []
        assert [s.symbol for s in await repo.list(active=None)] == ["DIS"]
        with pytest.raises(SymbolNotFoundError):
            await repo.get("DIS")
        # Watching it again re-activates the same row, keeping its history.
        again = await repo.add(symbol="DIS", exchange=DEFAULT_EXCHANGE, horizon=3, lookback=30)
        assert again.active and again.horizon == 3
        assert again.created_at.tzinfo is not None


async def test_symbol_settings_are_checked_by_the_database(sessions: Sessions) -> None:
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            await SymbolRepository(session).add(
                symbol="BAD", exchange=DEFAULT_EXCHANGE, horizon=99, lookback=60
            )


async def test_price_upsert_is_idempotent_and_reads_in_order(sessions: Sessions) -> None:
    days = [date(2024, 1, 2) + timedelta(days=i) for i in range(5)]
    async with sessions() as session, session.begin():
        repo = PriceRepository(session)
        assert await repo.upsert("SPY", [_bar(d, 100.0 + i) for i, d in enumerate(days)]) == 5
    async with sessions() as session, session.begin():
        repo = PriceRepository(session)
        # The same dates again, one corrected: still five rows, the correction wins.
        await repo.upsert("SPY", [_bar(days[-1], 999.0), _bar(days[0], 100.0)])
    async with sessions() as session:
        repo = PriceRepository(session)
        assert await repo.count("SPY") == 5
        assert await repo.last_date("SPY") == days[-1]
        assert await repo.last_date("QQQ") is None
        loaded = await repo.load("SPY")
        assert [b.date for b in loaded] == days
        assert loaded[-1].close == 999.0
        assert [b.date for b in await repo.load("SPY", last=2)] == days[-2:]
        assert [b.date for b in await repo.load("SPY", start=days[1], end=days[2])] == days[1:3]
        assert await repo.closes_on("SPY", [days[1], date(2030, 1, 1)]) == {days[1]: 101.0}


async def test_a_bulk_upsert_in_chunks_stores_and_corrects_every_symbols_bars(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several symbols at once, cut into chunks (PostgreSQL: typed arrays; SQLite: an
    executemany) that end mid-symbol: every bar lands once, a null stays null, and the same
    bars again overwrite rather than duplicate."""
    from db.repositories import prices

    monkeypatch.setattr(prices, "_ARRAY_CHUNK", 7)
    monkeypatch.setattr(prices, "_UPSERT_CHUNK", 7)
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(10)]
    bars = {
        symbol: [
            BarRecord(
                date=day,
                open=base + i,
                high=base + i + 1,
                low=base + i - 1,
                close=base + i + 0.5,
                adj_close=None if i % 3 == 0 else base + i + 0.25,
                volume=1000.0 + i,
            )
            for i, day in enumerate(days)
        ]
        for symbol, base in (("AAA", 10.0), ("BBB.SA", 20.0), ("CCC", 30.0))
    }
    async with sessions() as session, session.begin():
        assert await PriceRepository(session).upsert_many(bars) == 30
    corrected = {"BBB.SA": [replace(bars["BBB.SA"][4], close=99.0, adj_close=98.0)]}
    async with sessions() as session, session.begin():
        assert await PriceRepository(session).upsert_many({**bars, **corrected}) == 21
    async with sessions() as session:
        repo = PriceRepository(session)
        for symbol, records in bars.items():
            loaded = await repo.load(symbol)
            expected = corrected.get(symbol, [])
            want = [next((c for c in expected if c.date == r.date), r) for r in records]
            assert [(b.date, b.close, b.adj_close, b.volume) for b in loaded] == [
                (r.date, r.close, r.adj_close, r.volume) for r in want
            ]


def _new_version(symbol: str, mase: float) -> NewModelVersion:
    return NewModelVersion(
        symbol=symbol,
        weights=b"\x00weights",
        metadata={"lookback": 60},
        metrics={"lstm_mase": mase},
        train_start=date(2020, 1, 1),
        train_end=date(2024, 1, 1),
    )


async def test_bulk_reads_give_each_symbols_newest_bars(sessions: Sessions) -> None:
    """``last_dates`` and ``load_recent`` (a refresh batch's reads; PostgreSQL answers them per
    symbol from the primary key): each symbol's own newest date and its ``last`` newest bars in
    ascending order, fewer when it has fewer, nothing for a symbol without bars, duplicates
    asked once."""
    start = date(2024, 1, 1)
    bars = {
        "AAA": [_bar(start + timedelta(days=i), 10.0 + i) for i in range(8)],
        "BBB.SA": [_bar(start + timedelta(days=i), 20.0 + i) for i in range(3, 5)],
        "CCC": [_bar(start + timedelta(days=i), 30.0 + i) for i in range(0, 12, 2)],
    }
    async with sessions() as session, session.begin():
        await PriceRepository(session).upsert_many(bars)
    async with sessions() as session:
        repo = PriceRepository(session)
        asked = ["CCC", "NONE", "AAA", "BBB.SA", "AAA"]
        assert await repo.last_dates(asked) == {
            "AAA": start + timedelta(days=7),
            "BBB.SA": start + timedelta(days=4),
            "CCC": start + timedelta(days=10),
        }
        assert await repo.last_dates([]) == {}
        recent = await repo.load_recent(asked, 3)
        assert list(recent) == ["AAA", "BBB.SA", "CCC"]
        assert recent["AAA"] == bars["AAA"][-3:]
        assert recent["BBB.SA"] == bars["BBB.SA"]
        assert recent["CCC"] == bars["CCC"][-3:]
        assert await repo.load_recent(["NONE"], 3) == {}


async def test_promotion_keeps_one_champion(sessions: Sessions) -> None:
    async with sessions() as session, session.begin():
        repo = ModelVersionRepository(session)
        first = await repo.add(_new_version("KO", 1.1))
        second = await repo.add(_new_version("KO", 0.9))
        assert await repo.promote(first.id) is None
    async with sessions() as session, session.begin():
        repo = ModelVersionRepository(session)
        previous = await repo.promote(second.id)
        assert previous is not None and previous.id == first.id
    async with sessions() as session:
        repo = ModelVersionRepository(session)
        champion = await repo.champion("KO")
        assert champion is not None and champion.id == second.id
        assert (await repo.get(first.id)).status == ModelStatus.RETIRED
        artifact = await repo.artifact(second.id)
        assert artifact.weights == b"\x00weights"
        assert artifact.metadata_json == {"lookback": 60}
        assert len(artifact.sha256) == 64


async def test_artifacts_in_bulk_are_the_stored_bytes_and_metadata(sessions: Sessions) -> None:
    """A refresh batch's artifact read (binary on PostgreSQL): every byte of the weights, zero
    bytes and high bytes included, the metadata as stored, each version once, an unknown id
    absent."""
    weights = bytes(range(256)) * 40 + b"\x00"
    metadata = {"lookback": 60, "nested": {"scale": [0.5, None], "name": "ünïcode"}}
    async with sessions() as session, session.begin():
        repo = ModelVersionRepository(session)
        first = await repo.add(replace(_new_version("KO", 1.0), weights=weights, metadata=metadata))
        second = await repo.add(_new_version("PEP", 1.0))
    async with sessions() as session:
        loaded = await ModelVersionRepository(session).artifacts(
            [second.id, first.id, second.id, 10_000]
        )
    assert sorted(loaded) == sorted([first.id, second.id])
    assert loaded[first.id].weights == weights
    assert loaded[first.id].metadata == metadata
    assert loaded[second.id].weights == b"\x00weights"
    assert loaded[second.id].metadata == {"lookback": 60}


async def test_the_database_refuses_a_second_champion(sessions: Sessions) -> None:
    async with sessions() as session, session.begin():
        repo = ModelVersionRepository(session)
        first = await repo.add(_new_version("XOM", 1.0))
        second = await repo.add(_new_version("XOM", 1.0))
        await repo.promote(first.id)
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            row = await ModelVersionRepository(session).get(second.id)
            row.status = ModelStatus.CHAMPION  # bypassing promote(): the index still holds
            await session.flush()


async def test_rejected_version_keeps_its_reason(sessions: Sessions) -> None:
    async with sessions() as session, session.begin():
        repo = ModelVersionRepository(session)
        row = await repo.add(_new_version("JPM", 1.4))
        await repo.reject(row.id, "significantly worse than naive: DM p=0.001 < 0.05")
    async with sessions() as session:
        repo = ModelVersionRepository(session)
        assert await repo.champion("JPM") is None
        rejected = await repo.list(symbol="JPM", status=ModelStatus.REJECTED)
        assert [r.status_reason for r in rejected] == [
            "significantly worse than naive: DM p=0.001 < 0.05"
        ]


def _steps(start: date, n: int, base: float) -> list[ForecastStepRecord]:
    return [
        ForecastStepRecord(
            step=i + 1,
            target_date=start + timedelta(days=i),
            point=base + i,
            lower_80=base + i - 1,
            upper_80=base + i + 1,
            lower_95=base + i - 2,
            upper_95=base + i + 2,
            naive=base,
        )
        for i in range(n)
    ]


async def test_latest_forecast_history_and_evaluation(sessions: Sessions) -> None:
    older = datetime(2024, 3, 1, 21, 5, tzinfo=UTC)
    newer = older + timedelta(days=1)
    async with sessions() as session, session.begin():
        repo = ForecastRepository(session)
        for issued, base in ((older, 100.0), (newer, 110.0)):
            await repo.add_batch(
                symbol="AAPL",
                model_version_id=None,
                model_kind="naive",
                issued_at=issued,
                last_observed_date=issued.date(),
                last_close=base,
                steps=_steps(issued.date() + timedelta(days=3), 3, base),
            )
    async with sessions() as session, session.begin():
        repo = ForecastRepository(session)
        latest = await repo.latest("AAPL")
        assert [(r.step, r.point) for r in latest] == [(1, 110.0), (2, 111.0), (3, 112.0)]
        assert latest[0].issued_at == newer
        assert await repo.latest("MSFT") == []
        assert (await repo.latest_issued_at())["AAPL"] == newer
        matured = await repo.matured_unevaluated("AAPL", date(2024, 3, 5))
        assert len(matured) == 3  # targets 03-04, 03-05 of the first; 03-05 of the second
        filled = await repo.record_actuals(matured, {date(2024, 3, 4): 105.0})
        assert filled == 1
    async with sessions() as session:
        repo = ForecastRepository(session)
        evaluated = await repo.evaluated("AAPL")
        assert [(r.actual, r.error) for r in evaluated] == [(105.0, 5.0)]
        history = await repo.history("AAPL", start=date(2024, 3, 5), end=date(2024, 3, 5))
        assert sorted(r.issued_at for r in history) == [older, newer]


async def test_forecast_steps_are_unique_per_issue(sessions: Sessions) -> None:
    issued = datetime(2024, 3, 1, tzinfo=UTC)
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            repo = ForecastRepository(session)
            for _ in range(2):
                await repo.add_batch(
                    symbol="KO",
                    model_version_id=None,
                    model_kind="naive",
                    issued_at=issued,
                    last_observed_date=issued.date(),
                    last_close=1.0,
                    steps=_steps(issued.date(), 1, 1.0),
                )


async def test_job_lifecycle_is_idempotent(sessions: Sessions) -> None:
    async with sessions() as session, session.begin():
        repo = JobRepository(session)
        assert await repo.record_queued(
            job_id="j1", kind="ingest", symbol="DIS", parameters={"a": 1}
        )
        assert not await repo.record_queued(job_id="j1", kind="ingest", symbol="DIS")  # no-op
        running = await repo.mark_running(job_id="j1", kind="ingest", symbol="DIS", worker="w1")
        assert (running.status, running.attempts) == (JobStatus.RUNNING, 1)
        assert running.parameters == {"a": 1}
    async with sessions() as session, session.begin():
        repo = JobRepository(session)
        assert await repo.finish("j1", status=JobStatus.FAILED, error="boom")
        # A late duplicate (another node's event) does not overwrite the outcome.
        assert not await repo.finish("j1", status=JobStatus.SUCCEEDED)
    async with sessions() as session:
        repo = JobRepository(session)
        job = await repo.get("j1")
        assert (job.status, job.error) == (JobStatus.FAILED, "boom")
        assert job.duration_seconds is not None and job.duration_seconds >= 0
        assert await repo.count_by_status() == {"failed": 1}
        assert [j.id for j in await repo.list(symbol="DIS", status=JobStatus.FAILED)] == ["j1"]
        with pytest.raises(JobNotFoundError):
            await repo.get("nope")
        with pytest.raises(ValueError, match="not a final status"):
            await repo.finish("j1", status=JobStatus.RUNNING)


async def test_pending_symbols_are_those_with_a_queued_or_running_job_of_the_kind(
    sessions: Sessions,
) -> None:
    async with sessions() as session, session.begin():
        repo = JobRepository(session)
        await repo.record_queued(job_id="q", kind="retrain", symbol="DIS")
        await repo.record_queued(job_id="r", kind="retrain", symbol="KO")
        await repo.mark_running(job_id="r", kind="retrain", symbol="KO", worker="w1")
        await repo.record_queued(job_id="f", kind="retrain", symbol="JPM")
        await repo.record_queued(job_id="i", kind="ingest", symbol="XOM")
        await repo.record_queued(job_id="q2", kind="retrain", symbol="DIS")
    async with sessions() as session, session.begin():
        await JobRepository(session).finish("f", status=JobStatus.FAILED, error="boom")
    async with sessions() as session:
        repo = JobRepository(session)
        asked = ["DIS", "KO", "JPM", "XOM", "SPY"]
        pending = await repo.pending_symbols(asked, kind="retrain")
        assert pending == {"DIS", "KO"}  # JPM's finished, XOM's is another kind, SPY has none
        # The same answer, symbol by symbol, as has_pending gives.
        assert pending == {s for s in asked if await repo.has_pending(symbol=s, kind="retrain")}
        assert await repo.pending_symbols(asked, kind="ingest") == {"XOM"}
        assert await repo.pending_symbols([], kind="retrain") == set()


async def test_events_resume_after_an_id(sessions: Sessions) -> None:
    ready = ForecastReady(
        issued_at=datetime(2024, 1, 3, 22, tzinfo=UTC),
        model_kind="naive",
        model_version_id=None,
        steps=5,
        last_observed_date=date(2024, 1, 3),
    )
    async with sessions() as session, session.begin():
        repo = EventRepository(session)
        first = await repo.append(
            SymbolAdded(horizon=5, lookback=60, retrain_cadence="weekly"), symbol="DIS"
        )
        await repo.append(ready, symbol="DIS")
        await repo.append(ready, symbol="KO")
    async with sessions() as session:
        repo = EventRepository(session)
        after_first = await repo.since(first.id)
        assert [(e.type, e.symbol) for e in after_first] == [
            ("forecast.ready", "DIS"),
            ("forecast.ready", "KO"),
        ]
        assert after_first[0].payload["steps"] == 5
        assert decode_payload(after_first[0].type, after_first[0].payload) == ready
        assert await repo.latest_id() == after_first[-1].id
        assert [e.symbol for e in await repo.recent(symbol="KO")] == ["KO"]
