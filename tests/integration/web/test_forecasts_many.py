"""``GET /forecasts/latest``: many symbols' latest forecasts in one read, each exactly as the
single-symbol read gives it, with the symbols that have none listed apart. Both backends."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from typing import Any

from litestar.testing import TestClient

from db.repositories import ForecastStepRecord


def _forecast(db: Any, symbol: str, close: float) -> None:
    db.add_forecast(
        symbol,
        [
            ForecastStepRecord(
                step=step,
                target_date=date(2030, 1, 1 + step),
                point=close,
                lower_80=close * 0.9,
                upper_80=close * 1.1,
                lower_95=close * 0.8,
                upper_95=close * 1.2,
                naive=close,
            )
            for step in (1, 2)
        ],
        issued_at=datetime.now(UTC).replace(microsecond=0),
        last_observed_date=date(2029, 12, 31),
        last_close=close,
    )


def test_many_latest_forecasts_in_one_read(
    make_client: Callable[..., AbstractContextManager[TestClient[Any]]], db: Any
) -> None:
    for index, symbol in enumerate(("AAA", "BBB", "CCC")):
        _forecast(db, symbol, 10.0 + index)
    with make_client() as client:
        single = {s: client.get(f"/symbols/{s}/forecast").json() for s in ("AAA", "CCC")}
        response = client.get(
            "/forecasts/latest",
            params=[("symbol", "ccc"), ("symbol", "ZZZ"), ("symbol", "AAA"), ("symbol", "CCC")],
        )
        assert response.status_code == 200, response.text
        body = response.json()
        # In the order asked, each as the single read gives it; a repeat counts once.
        assert body["forecasts"] == [single["CCC"], single["AAA"]]
        assert body["missing"] == ["ZZZ"]

        assert client.get("/forecasts/latest").status_code == 422
        bad = client.get("/forecasts/latest", params={"symbol": "A B"})
        assert bad.status_code == 422
        too_many = [("symbol", f"S{n:04d}") for n in range(1001)]
        assert client.get("/forecasts/latest", params=too_many).status_code == 422


def test_a_symbol_without_forecasts_only_is_missing(
    make_client: Callable[..., AbstractContextManager[TestClient[Any]]],
) -> None:
    with make_client() as client:
        response = client.get("/forecasts/latest", params={"symbol": "NONE"})
        assert response.status_code == 200
        assert response.json() == {"forecasts": [], "missing": ["NONE"]}
