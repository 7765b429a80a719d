"""Symbols beyond New York at the API: the exchange named or inferred at registration (and changed
later), refused with a 422 when it cannot be told, and the currency and time zone in every
payload, on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from db.contracts import ListingChecked, ListingNote
from db.engine import create_sync_db_engine
from db.repositories import BarRecord, EventRepository, ForecastStepRecord
from forecasting.calendar import last_closed_session, trading_days_after

PROBLEM = "application/problem+json"


def _stored_exchanges(url: str) -> dict[str, str]:
    engine = create_sync_db_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT symbol, exchange FROM symbols"))
            return {row.symbol: row.exchange for row in rows}
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("ticker", "exchange", "currency", "timezone"),
    [
        pytest.param("petr4.sa", "BVMF", "BRL", "America/Sao_Paulo", id="sao-paulo"),
        pytest.param("VOD.L", "XLON", "GBP", "Europe/London", id="london"),
        pytest.param("SHOP.TO", "XTSE", "CAD", "America/Toronto", id="toronto"),
        pytest.param("7203.T", "XTKS", "JPY", "Asia/Tokyo", id="tokyo"),
        pytest.param("0700.HK", "XHKG", "HKD", "Asia/Hong_Kong", id="hong-kong"),
        pytest.param("SAP.DE", "XETR", "EUR", "Europe/Berlin", id="xetra"),
        pytest.param("MC.PA", "XPAR", "EUR", "Europe/Paris", id="paris"),
        pytest.param("BHP.AX", "XASX", "AUD", "Australia/Sydney", id="sydney"),
        pytest.param("RELIANCE.NS", "XNSE", "INR", "Asia/Kolkata", id="nse"),
        pytest.param("^BVSP", "BVMF", "BRL", "America/Sao_Paulo", id="ibovespa"),
        pytest.param("^N225", "XTKS", "JPY", "Asia/Tokyo", id="nikkei"),
        pytest.param("DIS", "XNYS", "USD", "America/New_York", id="new-york"),
    ],
)
def test_the_exchange_is_inferred_from_the_ticker(
    client: TestClient[Any],
    auth: dict[str, str],
    api_database_url: str,
    ticker: str,
    exchange: str,
    currency: str,
    timezone: str,
) -> None:
    response = client.post("/symbols", json={"symbol": ticker}, headers=auth)

    assert response.status_code == 201, response.text
    symbol = response.json()["symbol"]
    assert (symbol["exchange"], symbol["currency"], symbol["timezone"]) == (
        exchange,
        currency,
        timezone,
    )
    assert symbol["listing_warnings"] == []
    assert _stored_exchanges(api_database_url) == {symbol["symbol"]: exchange}
    # The same listing on every read.
    [listed] = client.get("/symbols").json()
    assert (listed["exchange"], listed["currency"], listed["timezone"]) == (
        exchange,
        currency,
        timezone,
    )
    # The dashboard's watchlist writes this currency next to the symbol's prices.
    [entry] = client.get("/ui/data/watchlist").json()["symbols"]
    assert (entry["exchange"], entry["currency"]) == (exchange, currency)


@pytest.mark.parametrize(
    ("payload", "stored"),
    [
        pytest.param({"symbol": "PETR4", "exchange": "bvmf"}, "BVMF", id="lower-case-code"),
        pytest.param({"symbol": "VOD.L", "exchange": "XLON"}, "XLON", id="same-as-inferred"),
        pytest.param({"symbol": "AAPL", "exchange": "XNAS"}, "XNYS", id="alias-of-new-york"),
        pytest.param({"symbol": "FOO.XY", "exchange": "XTKS"}, "XTKS", id="unknown-suffix-named"),
    ],
)
def test_an_explicit_exchange_is_validated_and_stored_canonically(
    client: TestClient[Any],
    auth: dict[str, str],
    api_database_url: str,
    payload: dict[str, str],
    stored: str,
) -> None:
    response = client.post("/symbols", json=payload, headers=auth)

    assert response.status_code == 201, response.text
    assert response.json()["symbol"]["exchange"] == stored
    assert set(_stored_exchanges(api_database_url).values()) == {stored}


@pytest.mark.parametrize(
    ("payload", "field", "says"),
    [
        pytest.param({"symbol": "FOO.XY"}, "symbol", "'.XY'", id="unknown-suffix"),
        pytest.param({"symbol": "BRK.B"}, "symbol", "BRK-B", id="share-class-with-a-dot"),
        pytest.param({"symbol": "EURUSD=X"}, "symbol", "'=X'", id="currency-pair"),
        pytest.param({"symbol": "^XYZ"}, "symbol", "index", id="unknown-index"),
        pytest.param({"symbol": "DIS", "exchange": "XXXX"}, "exchange", "BVMF", id="unknown-code"),
        pytest.param({"symbol": "DIS", "exchange": "B3"}, "exchange", "XLON", id="not-a-mic"),
        pytest.param({"symbol": "DIS", "exchange": ""}, "exchange", None, id="empty-code"),
        pytest.param({"symbol": "DIS", "exchange": "X" * 40}, "exchange", None, id="long-code"),
        pytest.param({"symbol": "DIS", "exchange": 7}, "exchange", None, id="not-a-string"),
    ],
)
def test_an_exchange_that_cannot_be_told_is_422_and_changes_nothing(
    client: TestClient[Any],
    auth: dict[str, str],
    db: Any,
    payload: dict[str, Any],
    field: str,
    says: str | None,
) -> None:
    before = db.counts()

    response = client.post("/symbols", json=payload, headers=auth)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"] == "urn:stockcast:problem:validation"
    detail = problem["detail"]
    assert field in detail or any(e.get("key") == field for e in problem.get("errors", []))
    if says is not None:
        assert says in detail
    if field == "symbol":
        # Never silently New York.
        assert "not taken to be New York" in detail or "index" in detail
    assert db.counts() == before


def test_the_unknown_code_problem_names_every_accepted_code(
    client: TestClient[Any], auth: dict[str, str]
) -> None:
    response = client.post("/symbols", json={"symbol": "DIS", "exchange": "XXXX"}, headers=auth)

    detail = response.json()["detail"]
    accepted = detail.split("accepted codes", 1)[1]
    for code in ("BVMF", "XLON", "XTSE", "XTKS", "XHKG", "XETR", "XPAR", "XASX", "XNSE", "XNYS"):
        assert code in accepted


def test_patching_the_exchange_reschedules_and_redates(
    client: TestClient[Any], auth: dict[str, str], api_database_url: str, db: Any
) -> None:
    # Registered as a plain ticker, so on New York; it is really the B3 share.
    client.post("/symbols", json={"symbol": "PETR4", "horizon": 3}, headers=auth)
    db.add_bars("PETR4", [BarRecord(date=date(2018, 12, 28), **_ohlcv(22.0))])

    moved = client.patch("/symbols/PETR4", json={"exchange": "bvmf"}, headers=auth)

    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["symbol"]["exchange"], body["symbol"]["currency"]) == ("BVMF", "BRL")
    assert body["symbol"]["timezone"] == "America/Sao_Paulo"
    # The ingest schedule moves to B3's closes; the stored forecast is dated again.
    assert sorted(job["kind"] for job in body["jobs"]) == ["forecast", "sync_schedules"]
    assert _stored_exchanges(api_database_url) == {"PETR4": "BVMF"}

    # The same exchange again changes nothing that needs a job.
    again = client.patch("/symbols/PETR4", json={"exchange": "BVMF"}, headers=auth)
    assert again.status_code == 200
    assert again.json()["jobs"] == []

    before = db.counts()
    refused = client.patch("/symbols/PETR4", json={"exchange": "NOPE"}, headers=auth)
    assert refused.status_code == 422
    assert "accepted codes" in refused.json()["detail"]
    assert db.counts() == before
    assert _stored_exchanges(api_database_url) == {"PETR4": "BVMF"}


def test_a_new_exchange_without_prices_only_reschedules(
    client: TestClient[Any], auth: dict[str, str]
) -> None:
    client.post("/symbols", json={"symbol": "VOD"}, headers=auth)

    moved = client.patch("/symbols/VOD", json={"exchange": "XLON"}, headers=auth)

    assert [job["kind"] for job in moved.json()["jobs"]] == ["sync_schedules"]
    assert moved.json()["symbol"]["currency"] == "GBP"


def test_the_forecast_payload_names_currency_and_timezone(
    client: TestClient[Any], auth: dict[str, str], db: Any
) -> None:
    client.post("/symbols", json={"symbol": "PETR4.SA", "horizon": 3}, headers=auth)
    last = date(2018, 12, 28)
    targets = trading_days_after(last, 3, "BVMF")
    db.add_forecast(
        "PETR4.SA",
        [
            ForecastStepRecord(
                step=step,
                target_date=target,
                point=22.0,
                lower_80=21.0,
                upper_80=23.0,
                lower_95=20.0,
                upper_95=24.0,
                naive=22.0,
            )
            for step, target in enumerate(targets, start=1)
        ],
        issued_at=datetime(2018, 12, 28, 21, tzinfo=UTC),
        last_observed_date=last,
        last_close=22.0,
    )

    latest = client.get("/symbols/PETR4.SA/forecast").json()
    history = client.get("/symbols/PETR4.SA/forecasts").json()

    for payload in (latest, history):
        assert (payload["exchange"], payload["currency"], payload["timezone"]) == (
            "BVMF",
            "BRL",
            "America/Sao_Paulo",
        )
    assert [step["target_date"] for step in latest["steps"]] == [
        "2019-01-02",
        "2019-01-03",
        "2019-01-04",
    ]


def test_what_the_source_said_about_the_listing_is_on_the_symbol(
    client: TestClient[Any], auth: dict[str, str], db: Any
) -> None:
    client.post("/symbols", json={"symbol": "PETR4"}, headers=auth)
    note = ListingNote(
        field="currency",
        expected="USD",
        reported="BRL",
        message="PETR4: the source quotes it in BRL, not in USD (the currency of XNYS)",
    )

    async def checked(session: AsyncSession) -> None:
        await EventRepository(session).append(
            ListingChecked(exchange="XNYS", source="yfinance", disagreements=[note]),
            symbol="PETR4",
        )

    db.run(checked)

    assert client.get("/symbols/PETR4").json()["listing_warnings"] == [note.message]
    # Compared as New York: once it is moved to B3 the warning no longer applies.
    client.patch("/symbols/PETR4", json={"exchange": "BVMF"}, headers=auth)
    assert client.get("/symbols/PETR4").json()["listing_warnings"] == []


def test_training_an_unwatched_ticker_of_unknown_exchange_is_422(
    client: TestClient[Any], auth: dict[str, str], db: Any
) -> None:
    before = db.counts()

    response = client.post("/train", json={"symbol": "FOO.XY"}, headers=auth)

    assert response.status_code == 422
    assert "'.XY'" in response.json()["detail"]
    assert db.counts() == before
    assert client.post("/train", json={"symbol": "VALE3.SA"}, headers=auth).status_code == 202


def _ohlcv(close: float) -> dict[str, float]:
    return {
        "open": close,
        "high": close,
        "low": close,
        "close": close,
        "adj_close": close,
        "volume": 1000.0,
    }


def test_predicting_an_unwatched_b3_share_dates_it_on_b3(
    client: TestClient[Any],
    auth: dict[str, str],
    db: Any,
    tiny_artifact: Any,
    bars_of: Any,
) -> None:
    # Trained on demand, never watched: its exchange is the one its ticker names. Real closes,
    # re-dated onto the B3 sessions that end on Friday 2018-12-28.
    last = date(2018, 12, 28)
    bars = bars_of("DIS", last=40)
    sessions = [last]
    while len(sessions) < len(bars):
        sessions.insert(0, trading_days_before(sessions[0]))
    db.add_bars(
        "PETR4.SA",
        [
            BarRecord(
                date=day,
                open=bar.open,
                high=bar.high,
                low=bar.low,
                close=bar.close,
                adj_close=None,
                volume=bar.volume,
            )
            for day, bar in zip(sessions, bars, strict=True)
        ],
    )
    db.add_model("PETR4.SA", tiny_artifact, model_name="petr4_v1")

    response = client.post("/predict", json={"symbol": "petr4.sa"}, headers=auth)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["last_observed_date"] == "2018-12-28"
    assert [step["target_date"] for step in body["steps"]] == [
        "2019-01-02",
        "2019-01-03",
        "2019-01-04",
    ]
    assert (body["exchange"], body["currency"], body["timezone"]) == (
        "BVMF",
        "BRL",
        "America/Sao_Paulo",
    )
    # B3's last closed session, not New York's, is what the stored bars are judged against.
    expected = last_closed_session(datetime.now(UTC), "BVMF").isoformat()
    assert body["prices"]["expected_last_session"] == expected

    # A model for a ticker whose exchange cannot be told is not served on New York's calendar.
    db.add_model("FOO.XY", tiny_artifact, model_name="foo_v1")
    refused = client.post("/predict", json={"symbol": "FOO.XY"}, headers=auth)
    assert refused.status_code == 422
    assert "'.XY'" in refused.json()["detail"]


def trading_days_before(day: date) -> date:
    """The B3 session before ``day``."""
    from datetime import timedelta

    from forecasting.calendar import is_trading_day

    candidate = day - timedelta(days=1)
    while not is_trading_day(candidate, "BVMF"):
        candidate -= timedelta(days=1)
    return candidate
