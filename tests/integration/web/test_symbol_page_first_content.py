"""The symbol page carries its first content in the HTML itself: the latest forecast's summary,
its steps and what is served, so a page is useful before (and without) its scripts. Both
backends, through the real app."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from typing import Any

from litestar.testing import TestClient

from db.repositories import ForecastStepRecord

MakeClient = Callable[..., AbstractContextManager[TestClient[Any]]]


def _seed(db: Any) -> None:
    db.add_forecast(
        "DIS",
        [
            ForecastStepRecord(
                step=step,
                target_date=date(2030, 1, 1 + step),
                point=101.25 + step,
                lower_80=95.5,
                upper_80=107.75,
                lower_95=90.0,
                upper_95=113.0,
                naive=100.5,
            )
            for step in (1, 2, 3)
        ],
        issued_at=datetime(2029, 12, 31, 22, 5, tzinfo=UTC),
        last_observed_date=date(2029, 12, 31),
        last_close=100.5,
    )


def test_the_page_shows_the_latest_forecast_without_scripts(
    make_client: MakeClient, db: Any
) -> None:
    _seed(db)
    with make_client() as client:
        page = client.get("/ui/symbols/dis")
    assert page.status_code == 200
    html = page.text
    assert 'id="symbol-status" class="form-status" role="status"></p>' in html  # no "Loading…"
    assert "100.50" in html and "2029-12-31" in html  # the last close and its day
    assert '<span data-field="next-point">102.25</span>' in html
    assert "80%: 95.50 \u2013 107.75" in html  # an en dash, as the page writes it
    assert html.count("<tr><td>2030-01-0") == 3  # one table row per step
    assert "naive baseline" in html


def test_without_a_forecast_or_when_reads_need_a_key_the_page_is_a_shell(
    make_client: MakeClient, db: Any, api_key: str
) -> None:
    with make_client() as client:
        assert "Loading…" in client.get("/ui/symbols/NONE").text
    _seed(db)
    with make_client(require_key_for_reads=True) as client:
        page = client.get("/ui/symbols/DIS")
    assert page.status_code == 200
    assert "Loading…" in page.text and "102.25" not in page.text
