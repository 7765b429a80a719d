"""The watchlist page carries its rows in the HTML itself: useful before (and without) its
scripts, so a plain screenshot or a text browser shows data, why a job failed included."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import JobStatus
from db.repositories import BarRecord, ForecastStepRecord, JobRepository

from .conftest import utc


def _seed(db: Any) -> None:
    db.watch("SPY")
    db.watch("AAPL")
    db.add_bars(
        "SPY",
        [
            BarRecord(
                date=date(2020, 8, 28),
                open=349.4,
                high=350.7,
                low=348.2,
                close=350.58,
                adj_close=None,
                volume=1,
            )
        ],
    )
    db.add_forecast(
        "SPY",
        [
            ForecastStepRecord(
                step=1,
                target_date=date(2020, 8, 31),
                point=351.25,
                lower_80=345.5,
                upper_80=356.75,
                lower_95=340.0,
                upper_95=362.0,
                naive=350.58,
            )
        ],
        issued_at=utc(2026, 11, 30),
        last_observed_date=date(2020, 8, 28),
        last_close=350.58,
    )

    async def failed_training(session: AsyncSession) -> None:
        jobs = JobRepository(session)
        await jobs.record_queued(job_id="t1", kind="retrain", symbol="AAPL", parameters={})
        await jobs.mark_running(job_id="t1", kind="retrain", symbol="AAPL", worker="w")
        await jobs.finish(
            "t1", status=JobStatus.FAILED, error="InsufficientHistoryError: AAPL has 40 bars"
        )

    db.run(failed_training)


def test_the_watchlist_rows_are_in_the_page(client: TestClient[Any], db: Any) -> None:
    _seed(db)
    html = client.get("/").text
    spy = html.split('<tr data-symbol="SPY">', 1)[1].split("</tr>", 1)[0]
    assert "350.58" in spy and "2020-08-28" in spy
    assert ">351.25</strong>" in spy and "80%: 345.50 \N{EN DASH} 356.75" in spy
    assert "naive baseline" in spy
    aapl = html.split('<tr data-symbol="AAPL">', 1)[1].split("</tr>", 1)[0]
    assert "no forecast yet" in aapl
    assert "retrain failed" in aapl
    assert '<span class="sub job-error">InsufficientHistoryError: AAPL has 40 bars</span>' in aapl
    assert "Loading the watchlist" not in html
    assert 'id="symbol-count" class="count">(2)<' in html


def test_an_empty_watchlist_says_so(client: TestClient[Any]) -> None:
    assert "No symbols are watched yet" in client.get("/").text


def test_with_keys_for_reads_the_page_stays_a_shell(make_client: Any, db: Any) -> None:
    _seed(db)
    with make_client(require_key_for_reads=True) as client:
        html = client.get("/").text
    assert 'data-symbol="SPY"' not in html
    assert "Loading the watchlist" in html


def test_markup_in_a_job_error_stays_text(client: TestClient[Any], db: Any) -> None:
    db.watch("SPY")

    async def hostile(session: AsyncSession) -> None:
        jobs = JobRepository(session)
        await jobs.record_queued(job_id="x", kind="ingest", symbol="SPY", parameters={})
        await jobs.mark_running(job_id="x", kind="ingest", symbol="SPY", worker="w")
        await jobs.finish("x", status=JobStatus.FAILED, error="<script>alert(1)</script>")

    db.run(hostile)
    html = client.get("/").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
