"""A long watchlist stays usable: the page shows 50 symbols at a time (rendered by the server, with
page links that work without scripts), a search narrows them, and a page costs a fixed number of
statements whatever the length of the watchlist (no query per symbol).

A thousand symbols are written through the repository, on each backend.
"""

from __future__ import annotations

import asyncio
import html
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import create_async_db_engine, create_session_factory
from db.repositories import (
    BarRecord,
    ForecastStepRecord,
    JobRepository,
    PriceRepository,
    SymbolRepository,
)
from db.repositories.overview import OverviewRepository, WatchlistWindow
from forecasting.calendar import DEFAULT_EXCHANGE
from web.services.dashboard import DashboardService

Client = TestClient[Any]

#: 997 numbered symbols, two US names and a London one: 1,000, alphabetically AAPL, DIS,
#: S0000 ... S0996, VOD.L.
NUMBERED = [f"S{n:04d}" for n in range(997)]
WATCHED = 1000
ROW = re.compile(r'<tr data-symbol="([^"]+)">')
LINK = re.compile(r'<a [^>]*data-page="(first|previous|next)"[^>]*href="([^"]+)"')


@pytest.fixture
def thousand(db: Any) -> None:
    async def work(session: AsyncSession) -> None:
        symbols = SymbolRepository(session)
        for name in ("AAPL", "DIS", *NUMBERED):
            await symbols.add(symbol=name, exchange=DEFAULT_EXCHANGE, horizon=3, lookback=10)
        await symbols.add(symbol="VOD.L", exchange="XLON", horizon=3, lookback=10)
        await symbols.add(symbol="GONE", exchange=DEFAULT_EXCHANGE, horizon=3, lookback=10)
        await symbols.deactivate("GONE")
        await JobRepository(session).record_queued(job_id="j", kind="ingest", symbol="S0060")

    db.run(work)
    # A row on the second page with data, to see it rendered there.
    db.add_bars(
        "S0060",
        [
            BarRecord(
                date=date(2026, 11, 27),
                open=10.0,
                high=11.0,
                low=9.5,
                close=10.75,
                adj_close=None,
                volume=1.0,
            )
        ],
    )
    db.add_forecast(
        "S0060",
        [
            ForecastStepRecord(
                step=1,
                target_date=date(2026, 11, 30),
                point=10.9,
                lower_80=10.1,
                upper_80=11.7,
                lower_95=9.8,
                upper_95=12.0,
                naive=10.75,
            )
        ],
        issued_at=datetime(2026, 11, 28, 1, tzinfo=UTC),
        last_observed_date=date(2026, 11, 27),
        last_close=10.75,
    )


def _forecast_of(db: Any, symbol: str, point: float, issued_at: datetime) -> None:
    step = ForecastStepRecord(
        step=1,
        target_date=date(2026, 11, 30),
        point=point,
        lower_80=point - 1,
        upper_80=point + 1,
        lower_95=point - 2,
        upper_95=point + 2,
        naive=point,
    )
    db.add_forecast(
        symbol, [step], issued_at=issued_at, last_observed_date=date(2026, 11, 27), last_close=point
    )


def _rows(page: str) -> list[str]:
    return ROW.findall(page)


def _links(page: str) -> dict[str, str]:
    return {name: html.unescape(href) for name, href in LINK.findall(page)}


def test_the_page_shows_fifty_of_a_thousand_and_its_links_page_through(
    thousand: None, client: Client
) -> None:
    first = client.get("/").text
    assert _rows(first) == ["AAPL", "DIS", *NUMBERED[:48]]
    assert 'id="symbol-count" class="count">(1000)<' in first
    assert "1\N{EN DASH}50 of 1000" in first
    assert _links(first) == {"next": "/?after=S0047"}

    second = client.get(_links(first)["next"]).text
    assert _rows(second) == NUMBERED[48:98]
    assert "51\N{EN DASH}100 of 1000" in second
    s0060 = second.split('<tr data-symbol="S0060">', 1)[1].split("</tr>", 1)[0]
    assert "10.75" in s0060 and ">10.90</strong>" in s0060
    assert _links(second) == {"first": "/", "previous": "/?before=S0048", "next": "/?after=S0097"}
    assert _rows(client.get(_links(second)["previous"]).text) == _rows(first)

    # The last page: 1000 = 20 x 50.
    last = client.get("/?after=S0947").text
    assert _rows(last) == [*NUMBERED[948:], "VOD.L"]
    assert "951\N{EN DASH}1000 of 1000" in last
    assert "next" not in _links(last) and "previous" in _links(last)


def test_a_search_narrows_the_rows_and_its_pages_keep_it(thousand: None, client: Client) -> None:
    narrowed = client.get("/", params={"q": "s09"}).text
    assert _rows(narrowed) == NUMBERED[900:950]
    assert 'id="symbol-count" class="count">(97 of 1000)<' in narrowed
    assert 'name="q" type="search" value="S09"' in narrowed
    assert _links(narrowed) == {"next": "/?q=S09&after=S0949"}
    assert _rows(client.get(_links(narrowed)["next"]).text) == NUMBERED[950:]

    assert _rows(client.get("/?q=aapl").text) == ["AAPL"]
    # An exchange's code lists the symbols trading there.
    assert _rows(client.get("/?q=xlon").text) == ["VOD.L"]
    # Removed symbols are not listed, and LIKE's wildcards are plain characters.
    for nothing in ("gone", "%", "S_0"):
        page = client.get("/", params={"q": nothing}).text
        assert _rows(page) == []
        assert "No watched symbol matches" in page


def test_each_row_gets_its_own_latest_forecast(thousand: None, db: Any, client: Client) -> None:
    """S0061 has an older forecast issued when S0060's latest was: looking the latest up by
    symbols and times must not hand S0061 that one too."""
    _forecast_of(db, "S0061", 20.0, datetime(2026, 11, 28, 1, tzinfo=UTC))
    _forecast_of(db, "S0061", 21.0, datetime(2026, 11, 29, 1, tzinfo=UTC))
    body = client.get("/ui/data/watchlist", params={"q": "S006"}).json()
    forecasts = {entry["symbol"]: entry["forecast"] for entry in body["symbols"]}
    assert forecasts["S0060"]["horizon"] == 1 and forecasts["S0060"]["next"]["point"] == 10.9
    assert forecasts["S0061"]["horizon"] == 1 and forecasts["S0061"]["next"]["point"] == 21.0
    assert forecasts["S0062"] is None


def test_the_data_route_pages_the_same_way(thousand: None, client: Client) -> None:
    seen: list[str] = []
    query: dict[str, Any] = {"limit": 200}
    while True:
        body = client.get("/ui/data/watchlist", params=query).json()
        assert body["page"]["first"] == len(seen) + 1
        seen += [entry["symbol"] for entry in body["symbols"]]
        if body["page"]["next_after"] is None:
            break
        query["after"] = body["page"]["next_after"]
    assert seen == ["AAPL", "DIS", *NUMBERED, "VOD.L"]

    default = client.get("/ui/data/watchlist").json()
    assert len(default["symbols"]) == 50
    assert default["page"] == {
        "search": None,
        "limit": 50,
        "watched": WATCHED,
        "matching": WATCHED,
        "first": 1,
        "next_after": "S0047",
        "previous_before": None,
    }
    searched = client.get("/ui/data/watchlist", params={"q": "S09", "before": "S0950"}).json()
    assert [entry["symbol"] for entry in searched["symbols"]] == NUMBERED[900:950]
    # A page before a symbol near the start would be short: the first page is shown instead.
    near = client.get("/ui/data/watchlist", params={"before": "S0003"}).json()
    assert near["page"]["first"] == 1 and len(near["symbols"]) == 50


@pytest.mark.parametrize(
    "query",
    [
        {"after": "S0001", "before": "S0100"},
        {"limit": "0"},
        {"limit": "201"},
        {"after": "no such thing!"},
        {"q": "x" * 33},
    ],
)
def test_bad_page_requests_are_refused(db: Any, client: Client, query: dict[str, str]) -> None:
    for path in ("/", "/ui/data/watchlist"):
        response = client.get(path, params=query)
        assert response.status_code in (400, 422), response.text
        assert response.headers["content-type"].startswith("application/problem+json")


def test_a_page_costs_the_same_statements_with_a_thousand_symbols(
    thousand: None, api_database_url: str
) -> None:
    async def statements(window: WatchlistWindow) -> tuple[int, int]:
        engine = create_async_db_engine(api_database_url)
        seen: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
        try:
            overview = await DashboardService(create_session_factory(engine)).watchlist(window)
        finally:
            await engine.dispose()
        return len(overview.symbols), len(seen)

    # The rows; the latest bar, forecast and job by key (each skipped when the page has none);
    # the champions; the counts.
    assert asyncio.run(statements(WatchlistWindow(limit=50, after="S0047"))) == (50, 6)
    assert asyncio.run(statements(WatchlistWindow(limit=200, search="S0", after="S0010"))) == (
        200,
        6,
    )
    assert asyncio.run(statements(WatchlistWindow(limit=50))) == (50, 3)


def test_the_whole_watchlist_can_still_be_read_at_once(thousand: None, db: Any) -> None:
    """Every one of 1,000 symbols with a close: their keys are looked up in several statements,
    as SQLite refuses an ``OR`` list 1,000 deep ("Expression tree is too large")."""
    bar = BarRecord(
        date=date(2026, 11, 27), open=1.0, high=1.0, low=1.0, close=2.5, adj_close=None, volume=1
    )

    async def closes(session: AsyncSession) -> list[float | None]:
        prices = PriceRepository(session)
        for name in ("AAPL", "DIS", *NUMBERED, "VOD.L"):
            await prices.upsert(name, [bar])
        await session.flush()
        overview = await OverviewRepository(session).watchlist()
        return [item.last_bar.close if item.last_bar else None for item in overview]

    assert db.run(closes) == [2.5] * WATCHED
