"""The dashboard's server side without a browser: the pages and their security headers, the
versioned asset bundle, and the two ``/ui/data`` aggregations against a seeded database (both
backends), read through the real app with Litestar's test client."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import JobStatus, ModelStatus
from db.repositories import (
    BarRecord,
    ForecastRepository,
    ForecastStepRecord,
    JobRepository,
    ModelVersionRepository,
    NewModelVersion,
    SymbolRepository,
)
from forecasting.calendar import DEFAULT_EXCHANGE
from web.controllers.dashboard import STATIC_DIR

Client = TestClient[Any]
MakeClient = Callable[..., AbstractContextManager[Client]]

ASSET_URL = re.compile(r'(?:href|src)="(/static/dashboard/[0-9a-f]+/[^"]+)"')


def _bar(day: date, close: float) -> BarRecord:
    return BarRecord(
        date=day, open=close, high=close + 1, low=close - 1, close=close, adj_close=None, volume=1.0
    )


def _steps(first_target: date, points: list[float]) -> list[ForecastStepRecord]:
    return [
        ForecastStepRecord(
            step=step,
            target_date=first_target + timedelta(days=step - 1),
            point=point,
            lower_80=point - 1,
            upper_80=point + 1,
            lower_95=point - 2,
            upper_95=point + 2,
            naive=100.0,
        )
        for step, point in enumerate(points, start=1)
    ]


# --------------------------------------------------------------------------- pages and assets


def test_watchlist_page_is_a_self_contained_shell(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    # Scripts, styles and data from this server only: no CDN, nothing inline.
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy
    html = response.text
    assert "<script>" not in html  # no inline script for the policy to block
    assert not re.search(r'(?:href|src)="(?:https?:)?//', html)
    assets = ASSET_URL.findall(html)
    assert any(url.endswith("/js/watchlist.js") for url in assets)
    assert any(url.endswith("/dashboard.css") for url in assets)
    for url in assets:
        served = client.get(url)
        assert served.status_code == 200, url
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_symbol_page_names_its_symbol_and_refuses_what_is_not_one(client: Client) -> None:
    page = client.get("/ui/symbols/dis")
    assert page.status_code == 200
    assert 'data-symbol="DIS"' in page.text
    assert client.get("/ui/symbols/%5EGSPC").text.count('data-symbol="^GSPC"') == 1

    refused = client.get("/ui/symbols/%3Cscript%3Ealert(1)%3C")
    assert refused.status_code == 404
    assert "invalid symbol" in refused.text
    # The rejected text is shown escaped, never as markup.
    assert "<script>alert" not in refused.text
    assert "&lt;script&gt;" in refused.text


def test_assets_are_served_from_the_bundle_only(client: Client) -> None:
    html = client.get("/").text
    script = next(url for url in ASSET_URL.findall(html) if url.endswith("/js/watchlist.js"))
    on_disk = (STATIC_DIR / "js" / "watchlist.js").read_bytes()

    plain = client.get(script, headers={"Accept-Encoding": "identity"})
    assert plain.content == on_disk
    assert plain.headers["content-type"].startswith("text/javascript")
    assert "content-encoding" not in plain.headers

    # httpx would undo the compression; read the raw bytes to see what crossed the wire.
    with client.stream("GET", script, headers={"Accept-Encoding": "gzip"}) as compressed:
        raw = b"".join(compressed.iter_raw())
        assert compressed.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == on_disk
    assert len(raw) < len(on_disk) / 2

    again = client.get(script, headers={"If-None-Match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b""

    version = script.split("/")[3]
    stale = client.get(script.replace(version, "0" * len(version)))
    assert stale.status_code == 200 and stale.content == on_disk
    assert stale.headers["cache-control"] == "no-cache"  # an old page's URL is never cached

    base = f"/static/dashboard/{version}"
    assert client.get(f"{base}/js/missing.js").status_code == 404
    assert client.get(f"{base}/../../app.py").status_code == 404
    assert client.get(f"{base}/%2e%2e/%2e%2e/app.py").status_code == 404


def test_pages_stay_open_when_reads_need_a_key(make_client: MakeClient, api_key: str) -> None:
    with make_client(require_key_for_reads=True) as client:
        assert client.get("/").status_code == 200
        assert client.get("/ui/data/watchlist").status_code == 401
        assert client.get("/ui/data/watchlist", headers={"X-API-Key": api_key}).status_code == 200


# --------------------------------------------------------------------------- data


def test_watchlist_overview_shows_the_newest_of_everything(db: Any, client: Client) -> None:
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=n) for n in (4, 3, 2)]
    issued_old = datetime.now(UTC) - timedelta(days=1)
    issued_new = datetime.now(UTC) - timedelta(hours=2)

    async def seed(session: AsyncSession) -> int:
        symbols = SymbolRepository(session)
        for name in ("DIS", "AAPL", "GONE"):
            await symbols.add(symbol=name, exchange=DEFAULT_EXCHANGE, horizon=3, lookback=10)
        await symbols.deactivate("GONE")
        versions = ModelVersionRepository(session)
        retired = await versions.add(NewModelVersion(symbol="DIS", weights=b"1", metadata={}))
        await versions.promote(retired.id)
        champion = await versions.add(
            NewModelVersion(
                symbol="DIS",
                weights=b"2",
                metadata={},
                model_name="dis_v2",
                metrics={"lstm_mase": 0.9, "lstm_theil_u2": 0.95},
            )
        )
        await versions.promote(champion.id)
        await versions.add(
            NewModelVersion(symbol="DIS", weights=b"3", metadata={}),
            status=ModelStatus.REJECTED,
            status_reason="worse than naive",
        )
        jobs = JobRepository(session)
        await jobs.record_queued(job_id="old", kind="ingest", symbol="DIS")
        await jobs.finish("old", status=JobStatus.FAILED, error="boom")
        return champion.id

    champion_id = db.run(seed)
    db.add_bars("DIS", [_bar(day, 100.0 + i) for i, day in enumerate(days)])
    db.add_forecast(
        "DIS",
        _steps(today, [90.0, 91.0, 92.0]),
        issued_at=issued_old,
        last_observed_date=days[1],
        last_close=101.0,
        model_kind="lstm",
        model_version_id=champion_id,
    )
    db.add_forecast(
        "DIS",
        _steps(today + timedelta(days=1), [103.0, 104.0]),
        issued_at=issued_new,
        last_observed_date=days[2],
        last_close=102.0,
        model_kind="lstm",
        model_version_id=champion_id,
    )
    db.run(
        lambda session: JobRepository(session).record_queued(
            job_id="new", kind="retrain", symbol="DIS"
        )
    )

    body = client.get("/ui/data/watchlist").json()
    entries = {entry["symbol"]: entry for entry in body["symbols"]}
    assert list(entries) == ["AAPL", "DIS"]  # alphabetical; the removed symbol is not listed

    dis = entries["DIS"]
    assert dis["last_close"] == {"date": days[2].isoformat(), "close": 102.0}
    forecast = dis["forecast"]
    assert forecast["horizon"] == 2 and forecast["last_close"] == 102.0
    assert datetime.fromisoformat(forecast["issued_at"]) == issued_new
    assert forecast["next"]["point"] == 103.0
    assert (forecast["next"]["lower_80"], forecast["next"]["upper_95"]) == (102.0, 105.0)
    assert dis["champion"]["id"] == champion_id
    assert dis["champion"]["model_name"] == "dis_v2"
    assert (dis["champion"]["skill"]["mase"], dis["champion"]["skill"]["theil_u2"]) == (0.9, 0.95)
    assert dis["last_job"]["id"] == "new" and dis["last_job"]["status"] == "queued"
    assert dis["url"] == "/symbols/DIS"

    aapl = entries["AAPL"]
    assert aapl["last_close"] is None and aapl["forecast"] is None
    assert aapl["champion"] is None and aapl["last_job"] is None


def test_recent_closes(db: Any, client: Client) -> None:
    start = date(2024, 1, 1)
    db.watch("DIS")
    db.add_bars("DIS", [_bar(start + timedelta(days=n), 100.0 + n) for n in range(30)])

    body = client.get("/ui/data/symbols/dis/closes", params={"count": 5}).json()
    assert body["symbol"] == "DIS" and body["count"] == 5
    assert [point["close"] for point in body["closes"]] == [125.0, 126.0, 127.0, 128.0, 129.0]
    assert body["closes"][-1]["date"] == (start + timedelta(days=29)).isoformat()

    unknown = client.get("/ui/data/symbols/ZZZZ/closes")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert client.get("/ui/data/symbols/DIS/closes", params={"count": 0}).status_code == 422
    assert client.get("/ui/data/symbols/..%2F..%2Fetc/closes").status_code in (404, 422)
    assert client.get(f"/ui/data/symbols/{'A' * 200}/closes").status_code == 422


def test_next_day_outcomes(db: Any, client: Client) -> None:
    origin = date(2024, 1, 2)
    db.watch("DIS")
    db.add_bars("DIS", [_bar(origin + timedelta(days=1), 105.0)])
    db.add_forecast(
        "DIS",
        _steps(origin + timedelta(days=1), [103.0, 104.0]),
        issued_at=datetime(2024, 1, 2, 22, tzinfo=UTC),
        last_observed_date=origin,
        last_close=100.0,
    )

    async def evaluate(session: AsyncSession) -> None:
        repository = ForecastRepository(session)
        matured = await repository.matured_unevaluated("DIS", origin + timedelta(days=1))
        await repository.record_actuals(matured, {origin + timedelta(days=1): 105.0})

    db.run(evaluate)
    body = client.get("/ui/data/symbols/DIS/next-day-outcomes").json()
    assert body["count"] == 1
    [outcome] = body["forecasts"]
    # Forecast 103 +- 1 at 80%, naive 100, actual 105: outside the interval, naive further off.
    assert outcome["target_date"] == (origin + timedelta(days=1)).isoformat()
    assert (outcome["point"], outcome["actual"]) == (103.0, 105.0)
    assert (outcome["error"], outcome["naive_error"]) == (2.0, 5.0)
    assert outcome["within_80"] is False

    assert client.get("/ui/data/symbols/ZZZZ/next-day-outcomes").status_code == 404
    assert (
        client.get("/ui/data/symbols/DIS/next-day-outcomes", params={"count": 0}).status_code == 422
    )
