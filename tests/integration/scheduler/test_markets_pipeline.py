"""A São Paulo share end to end: registered through the API without an exchange, it is inferred to
trade on B3 (BVMF, in BRL), scheduled at B3's close, ingested up to B3's last session and forecast
for B3's sessions, on both backends.

The prices are real ones re-dated: the last bars of a shared US series laid on the 300 B3 sessions
that end on Friday 2018-12-28 (B3 is shut on 31 December, New York is not), in ``PETR4.SA.csv``.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient

from db.kinds import JobKind
from db.models import JobStatus
from db.repositories import ForecastRepository
from forecasting.calendar import is_trading_day, session_close_utc, trading_days_after
from scheduler.triggers import SessionCloseTrigger
from stockcast.schema import head_revision
from web.app import create_app
from web.config import WebConfig

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

API_KEY = "markets-test-key-0123456789"
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
LAST_BAR = date(2018, 12, 28)  # a Friday; B3's next session is Wednesday 2019-01-02


def b3_sessions_until(last: date, count: int) -> list[date]:
    """The ``count`` B3 sessions up to and including ``last``, by B3's calendar."""
    sessions: list[date] = []
    day = last
    while len(sessions) < count:
        if is_trading_day(day, "BVMF"):
            sessions.append(day)
        day -= timedelta(days=1)
    return sessions[::-1]


def write_redated(source_csv: Path, target: Path, sessions: list[date]) -> None:
    """The last ``len(sessions)`` bars of ``source_csv`` with their dates replaced by ``sessions``."""
    with source_csv.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)[-len(sessions) :]
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for day, row in zip(sessions, rows, strict=True):
            writer.writerow([day.isoformat(), *row[1:]])


async def test_a_b3_share_is_scheduled_ingested_and_forecast_on_b3s_calendar(harness) -> None:
    sessions = b3_sessions_until(LAST_BAR, harness.rows)
    assert date(2018, 12, 31) not in sessions  # a New York session, not a B3 one
    write_redated(
        harness.shared_prices_dir / "DIS.csv", harness.prices_dir / "PETR4.SA.csv", sessions
    )
    config = WebConfig(
        database_url=harness.database_url,
        expected_revision=head_revision(),
        api_keys=(API_KEY,),
        source=f"csv:{harness.prices_dir}",
    )
    # The data ends in 2018: the backfill must reach back that far.
    node_config = harness.config(backfill_years=12)

    async with (
        harness.node(node_config),
        harness.client() as scheduler,
        AsyncTestClient(create_app(config, scheduler=scheduler)) as api,
    ):
        created = await api.post(
            "/symbols",
            json={"symbol": "petr4.sa", "horizon": harness.horizon, "lookback": harness.lookback},
            headers={"X-API-Key": API_KEY},
        )
        assert created.status_code == 201, created.text
        symbol = created.json()["symbol"]
        assert (symbol["symbol"], symbol["exchange"], symbol["currency"], symbol["timezone"]) == (
            "PETR4.SA",
            "BVMF",
            "BRL",
            "America/Sao_Paulo",
        )

        async def lstm_forecast_stored() -> bool:
            async with harness.sessions() as session:
                latest = await ForecastRepository(session).latest("PETR4.SA")
            return bool(latest) and latest[0].model_kind == "lstm"

        await harness.wait_for(
            lstm_forecast_stored, within=150, what="the trained model's forecast"
        )
        await harness.wait_for(harness.idle, within=60, what="the pipeline to go idle")

        forecast = (await api.get("/symbols/PETR4.SA/forecast")).json()
        schedules = {schedule.id: schedule for schedule in await scheduler.get_schedules()}

    # Dated on B3's sessions: after Friday 2018-12-28 comes Wednesday 2019-01-02.
    targets = [date.fromisoformat(step["target_date"]) for step in forecast["steps"]]
    assert targets == [date(2019, 1, 2), date(2019, 1, 3), date(2019, 1, 4)]
    assert trading_days_after(LAST_BAR, 3, "XNYS")[0] == date(2018, 12, 31)  # New York's
    assert forecast["last_observed_date"] == LAST_BAR.isoformat()
    assert (forecast["exchange"], forecast["currency"], forecast["timezone"]) == (
        "BVMF",
        "BRL",
        "America/Sao_Paulo",
    )
    assert forecast["model"]["kind"] == "lstm"

    # Both schedules fire after B3's closes, not New York's: B3's refresh, the symbol's retrain.
    for schedule_id in ("refresh:BVMF", "retrain:PETR4.SA"):
        trigger = schedules[schedule_id].trigger
        assert isinstance(trigger, SessionCloseTrigger)
        assert trigger.exchange == "BVMF"
    assert schedules["refresh:BVMF"].kwargs == {"exchange": "BVMF"}
    ingest = schedules["refresh:BVMF"]
    fires_at = ingest.next_fire_time
    assert fires_at is not None
    close = fires_at - timedelta(seconds=node_config.ingest_delay)
    assert close == session_close_utc(close.astimezone(SAO_PAULO).date(), "BVMF")

    # The backfill stopped at B3's last session in the file; every job succeeded.
    jobs = await harness.jobs()
    failed = [(job.kind, job.error) for job in jobs if job.status is not JobStatus.SUCCEEDED]
    assert not failed
    [ingest_job] = [job for job in jobs if job.kind == JobKind.INGEST]
    assert ingest_job.result is not None
    assert ingest_job.result["rows"] == harness.rows
    assert ingest_job.result["last_date"] == LAST_BAR.isoformat()
    # A CSV file says nothing about a listing: nothing to warn about.
    assert ingest_job.result["listing_warnings"] == []

    # The symbol.added event records the inferred exchange.
    events = [event for event in await harness.events() if event.symbol == "PETR4.SA"]
    added = next(event for event in events if event.type == "symbol.added")
    assert added.payload["exchange"] == "BVMF"
