"""Stored forecasts: the latest (cached, with ETag), the history with actuals, realised accuracy."""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from db.contracts import ForecastReady
from db.repositories import ForecastRepository, ForecastStepRecord


def _steps(base: float, targets: list[date], *, spread: float = 2.0) -> list[ForecastStepRecord]:
    return [
        ForecastStepRecord(
            step=index + 1,
            target_date=target,
            point=base + index,
            lower_80=base + index - spread,
            upper_80=base + index + spread,
            lower_95=base + index - 2 * spread,
            upper_95=base + index + 2 * spread,
            naive=base - 1,
        )
        for index, target in enumerate(targets)
    ]


TARGETS = [date(2025, 10, 9), date(2025, 10, 10), date(2025, 10, 13)]
ISSUED = datetime(2025, 10, 8, 21, 30, tzinfo=UTC)


def test_latest_forecast_of_the_naive_baseline(client: TestClient[Any], db: Any) -> None:
    db.watch("DIS")
    db.add_forecast(
        "DIS",
        _steps(100.0, TARGETS),
        issued_at=ISSUED,
        last_observed_date=date(2025, 10, 8),
        last_close=99.0,
    )

    response = client.get("/symbols/dis/forecast")

    assert response.status_code == 200
    body = response.json()
    assert body["symbol"] == "DIS"
    assert body["issued_at"] == "2025-10-08T21:30:00Z"
    assert (body["last_observed_date"], body["last_close"], body["horizon"]) == (
        "2025-10-08",
        99.0,
        3,
    )
    assert body["model"] == {
        "kind": "naive",
        "version_id": None,
        "model_name": None,
        "status": None,
        "skill": {
            "label": "naive baseline",
            "mase": None,
            "theil_u2": None,
            "directional_accuracy": None,
            "coverage_80": None,
            "coverage_95": None,
            "naive_mase": None,
            "dm_p_value": None,
        },
    }
    assert [step["target_date"] for step in body["steps"]] == [
        "2025-10-09",
        "2025-10-10",
        "2025-10-13",
    ]
    assert body["steps"][1] == {
        "step": 2,
        "target_date": "2025-10-10",
        "point": 101.0,
        "lower_80": 99.0,
        "upper_80": 103.0,
        "lower_95": 97.0,
        "upper_95": 105.0,
        "naive": 99.0,
    }
    assert response.headers["etag"].startswith('"')
    assert response.headers["cache-control"] == "public, max-age=60"


def test_latest_forecast_of_a_model_reports_its_backtest_skill(
    client: TestClient[Any], db: Any, tiny_artifact: Any
) -> None:
    version = db.add_model(
        "DIS",
        tiny_artifact,
        model_name="disney_v1",
        metrics={
            "lstm_mase": 0.97,
            "lstm_theil_u2": 1.02,
            "lstm_directional_accuracy": 0.52,
            "lstm_coverage_80": 0.81,
            "lstm_coverage_95": 0.94,
            "naive_mase": 1.0,
            "dm_p_value": 0.4,
        },
    )
    db.add_forecast(
        "DIS",
        _steps(100.0, TARGETS),
        issued_at=ISSUED,
        last_observed_date=date(2025, 10, 8),
        last_close=99.0,
        model_kind="lstm",
        model_version_id=version,
    )

    model = client.get("/symbols/DIS/forecast").json()["model"]

    assert (model["kind"], model["version_id"], model["model_name"], model["status"]) == (
        "lstm",
        version,
        "disney_v1",
        "champion",
    )
    assert model["skill"] == {
        "label": "lstm walk-forward backtest",
        "mase": 0.97,
        "theil_u2": 1.02,
        "directional_accuracy": 0.52,
        "coverage_80": 0.81,
        "coverage_95": 0.94,
        "naive_mase": 1.0,
        "dm_p_value": 0.4,
    }


def test_unbounded_interval_edges_are_null(client: TestClient[Any], db: Any) -> None:
    steps = [
        ForecastStepRecord(
            step=1,
            target_date=TARGETS[0],
            point=10.0,
            lower_80=9.0,
            upper_80=11.0,
            lower_95=0.0,
            upper_95=math.inf,
            naive=10.0,
        )
    ]
    db.add_forecast(
        "DIS", steps, issued_at=ISSUED, last_observed_date=date(2025, 10, 8), last_close=10.0
    )
    step = client.get("/symbols/DIS/forecast").json()["steps"][0]
    assert step["upper_95"] is None
    assert step["lower_95"] == 0.0


def test_unknown_symbol_and_symbol_without_forecast_are_404(
    client: TestClient[Any], db: Any
) -> None:
    db.watch("DIS")
    unknown = client.get("/symbols/XYZ/forecast")
    waiting = client.get("/symbols/DIS/forecast")

    assert unknown.status_code == waiting.status_code == 404
    assert unknown.json()["type"] == waiting.json()["type"] == "urn:stockcast:problem:no-forecast"
    assert "not on the watchlist" in unknown.json()["detail"]
    assert "no forecast has been issued for DIS yet" in waiting.json()["detail"]
    assert client.get("/symbols/..%2F..%2Fetc/forecast").status_code in (404, 422)


def test_etag_revalidation_gives_304(client: TestClient[Any], db: Any) -> None:
    db.add_forecast(
        "DIS",
        _steps(100.0, TARGETS),
        issued_at=ISSUED,
        last_observed_date=date(2025, 10, 8),
        last_close=99.0,
    )
    first = client.get("/symbols/DIS/forecast")
    etag = first.headers["etag"]

    again = client.get("/symbols/DIS/forecast", headers={"If-None-Match": etag})
    weak = client.get("/symbols/DIS/forecast", headers={"If-None-Match": f'"other", W/{etag}'})
    stale = client.get("/symbols/DIS/forecast", headers={"If-None-Match": '"something-else"'})

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert weak.status_code == 304
    assert stale.status_code == 200
    assert stale.json() == first.json()


def test_a_new_forecast_invalidates_the_cached_one(make_client: Any, db: Any) -> None:
    db.add_forecast(
        "DIS",
        _steps(100.0, TARGETS),
        issued_at=ISSUED,
        last_observed_date=date(2025, 10, 8),
        last_close=99.0,
    )
    # Started after the first forecast.ready, so the tailer begins past it.
    with make_client() as client:
        first = client.get("/symbols/DIS/forecast")
        assert first.json()["steps"][0]["point"] == 100.0
        # Served from the cache: rows written behind the API's back (no event) are not seen...
        newer = datetime(2025, 10, 9, 21, 30, tzinfo=UTC)
        db.add_forecast(
            "DIS",
            _steps(200.0, [date(2025, 10, 10), date(2025, 10, 13), date(2025, 10, 14)]),
            issued_at=newer,
            last_observed_date=date(2025, 10, 9),
            last_close=199.0,
            announce=False,
        )
        time.sleep(0.3)  # several tailer polls
        assert client.get("/symbols/DIS/forecast").json()["steps"][0]["point"] == 100.0

        # ...until the forecast job's event arrives: then the next read fetches the new one.
        db.append_event(
            ForecastReady(
                issued_at=newer,
                model_kind="naive",
                model_version_id=None,
                steps=3,
                last_observed_date=date(2025, 10, 9),
            ),
            "DIS",
        )
        deadline = time.monotonic() + 10
        while True:
            current = client.get(
                "/symbols/DIS/forecast", headers={"If-None-Match": first.headers["etag"]}
            )
            if current.status_code == 200:
                break
            assert time.monotonic() < deadline, "the cache was not invalidated by forecast.ready"
            time.sleep(0.05)
        assert current.json()["steps"][0]["point"] == 200.0
        assert current.json()["issued_at"] == "2025-10-09T21:30:00Z"
        assert current.headers["etag"] != first.headers["etag"]


def test_private_cache_control_when_reads_need_a_key(
    make_client: Any, db: Any, auth: dict[str, str]
) -> None:
    db.add_forecast(
        "DIS",
        _steps(100.0, TARGETS),
        issued_at=ISSUED,
        last_observed_date=date(2025, 10, 8),
        last_close=99.0,
    )
    with make_client(require_key_for_reads=True, forecast_max_age_s=5) as client:
        assert client.get("/symbols/DIS/forecast").status_code == 401
        response = client.get("/symbols/DIS/forecast", headers=auth)
        assert response.headers["cache-control"] == "private, max-age=5"


def _evaluate(db: Any, symbol: str, actuals: dict[date, float]) -> None:
    async def work(session: AsyncSession) -> None:
        repository = ForecastRepository(session)
        rows = await repository.matured_unevaluated(symbol, max(actuals))
        await repository.record_actuals(rows, actuals)

    db.run(work)


def test_history_carries_actuals_and_errors(client: TestClient[Any], db: Any) -> None:
    db.add_forecast(
        "DIS",
        _steps(100.0, TARGETS),
        issued_at=ISSUED,
        last_observed_date=date(2025, 10, 8),
        last_close=99.0,
    )
    _evaluate(db, "DIS", {date(2025, 10, 9): 101.5, date(2025, 10, 10): 96.0})

    history = client.get("/symbols/DIS/forecasts").json()

    assert (history["count"], history["truncated"]) == (3, False)
    first, second, third = history["forecasts"]
    assert (first["actual"], first["error"], first["naive_error"]) == (101.5, 1.5, 2.5)
    assert (first["within_80"], first["within_95"]) == (True, True)
    assert (second["actual"], second["error"]) == (96.0, -5.0)
    assert (second["within_80"], second["within_95"]) == (False, False)
    assert third["actual"] is None and third["within_80"] is None

    window = client.get("/symbols/DIS/forecasts?from=2025-10-10&to=2025-10-10").json()
    assert [row["target_date"] for row in window["forecasts"]] == ["2025-10-10"]
    limited = client.get("/symbols/DIS/forecasts?limit=2").json()
    assert (limited["count"], limited["truncated"]) == (2, True)


@pytest.mark.parametrize(
    "query",
    ["from=2025-10-10&to=2025-10-01", "from=yesterday", "limit=0", "limit=5001"],
)
def test_history_rejects_bad_ranges(client: TestClient[Any], db: Any, query: str) -> None:
    db.watch("DIS")
    response = client.get(f"/symbols/DIS/forecasts?{query}")
    assert response.status_code == 422
    assert response.json()["type"] == "urn:stockcast:problem:validation"


def test_history_of_an_unknown_symbol_is_404(client: TestClient[Any]) -> None:
    assert client.get("/symbols/XYZ/forecasts").status_code == 404
    assert client.get("/symbols/XYZ/accuracy").status_code == 404


def test_accuracy_scores_served_forecasts_against_naive(client: TestClient[Any], db: Any) -> None:
    # Two naive-labelled and one lstm-labelled forecast, all evaluated; figures worked by hand.
    db.add_forecast(
        "DIS",
        _steps(100.0, [date(2025, 9, 30), date(2025, 10, 1)]),
        issued_at=datetime(2025, 9, 29, 21, tzinfo=UTC),
        last_observed_date=date(2025, 9, 29),
        last_close=99.0,
        model_kind="lstm",
    )
    _evaluate(db, "DIS", {date(2025, 9, 30): 102.0, date(2025, 10, 1): 100.0})
    # points 100, 101; actual 102, 100 -> errors 2, 1 (MAE 1.5); naive 99 -> errors 3, 1 (MAE 2)

    report = client.get("/symbols/DIS/accuracy?group=month").json()

    assert report["evaluated"] == 2
    assert (report["first_target_date"], report["last_target_date"]) == ("2025-09-30", "2025-10-01")
    [overall] = report["overall"]
    assert (overall["model_kind"], overall["period"], overall["count"]) == ("lstm", None, 2)
    assert overall["mae"] == pytest.approx(1.5)
    assert overall["naive_mae"] == pytest.approx(2.0)
    assert overall["relative_mae"] == pytest.approx(0.75)
    assert overall["rmse"] == pytest.approx(math.sqrt((4 + 1) / 2))
    assert overall["theil_u2"] == pytest.approx(math.sqrt(5 / 2) / math.sqrt((9 + 1) / 2))
    # Up from 99 was called both times; it went up (102) then up (100): both right.
    assert overall["directional_accuracy"] == pytest.approx(1.0)
    # 80% intervals [98, 102] and [99, 103] hold 102 and 100 (closed intervals).
    assert overall["coverage_80"] == pytest.approx(1.0)
    assert [group["period"] for group in report["periods"]] == ["2025-09", "2025-10"]
    assert [group["count"] for group in report["periods"]] == [1, 1]

    weekly = client.get("/symbols/DIS/accuracy?group=week&recent_days=1").json()
    assert [group["period"] for group in weekly["periods"]] == ["2025-W40"]
    assert [group["count"] for group in weekly["recent"]] == [1]
    assert client.get("/symbols/DIS/accuracy?group=year").status_code == 422


def test_accuracy_of_a_symbol_without_evaluations_is_empty(
    client: TestClient[Any], db: Any
) -> None:
    db.watch("DIS")
    report = client.get("/symbols/DIS/accuracy").json()
    assert report["evaluated"] == 0
    assert report["overall"] == report["periods"] == report["recent"] == []
