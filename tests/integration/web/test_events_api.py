"""``GET /events``: server-sent events over a real HTTP connection (uvicorn on loopback)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from litestar.testing import TestClient

from db.contracts import (
    JobFailed,
    JobQueued,
    JobSucceeded,
    ModelPromoted,
    ModelRejected,
    PricesIngested,
    SymbolAdded,
)
from db.repositories import ForecastStepRecord
from web.app import create_app
from web.config import WebConfig


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serve(config: WebConfig) -> Iterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=_free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped during start-up"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def _events(base: str, **params: Any) -> Iterator[Iterator[dict[str, str]]]:
    """Parsed SSE messages (``id``, ``event``, ``data``; comments as ``comment``)."""
    headers = params.pop("headers", {})
    with (
        httpx.Client(timeout=httpx.Timeout(10.0)) as client,
        client.stream("GET", f"{base}/events", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")

        def messages() -> Iterator[dict[str, str]]:
            current: dict[str, str] = {}
            for line in response.iter_lines():
                if not line:
                    if current:
                        yield current
                    current = {}
                    continue
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                current[field or "comment"] = value

        yield messages()


def _next_event(messages: Iterator[dict[str, str]], *, within: float = 10.0) -> dict[str, str]:
    """The next message that is an event (heart-beats and comments skipped)."""
    deadline = time.monotonic() + within
    for message in messages:
        if "event" in message:
            return message
        assert time.monotonic() < deadline, "no event arrived in time"
    raise AssertionError("the stream ended")


def _wait_until_live(messages: Iterator[dict[str, str]]) -> None:
    first = next(messages)
    assert first.get("comment") == "stockcast events"
    assert first.get("retry") == "3000"


def _config(url: str, prices: Path) -> WebConfig:
    from stockcast.schema import head_revision

    return WebConfig(
        database_url=url,
        expected_revision=head_revision(),
        api_keys=("test-key-0123456789abcdef",),
        source=f"csv:{prices}",
        event_poll_interval_s=0.05,
        sse_heartbeat_s=0.2,
    )


STEPS = [
    ForecastStepRecord(
        step=1,
        target_date=date(2025, 10, 9),
        point=100.0,
        lower_80=99.0,
        upper_80=101.0,
        lower_95=98.0,
        upper_95=102.0,
        naive=99.5,
    )
]


def test_a_forecast_written_after_connecting_arrives(
    api_database_url: str, prices_dir: Path, db: Any
) -> None:
    with _serve(_config(api_database_url, prices_dir)) as base, _events(base) as messages:
        _wait_until_live(messages)
        issued = datetime(2025, 10, 8, 21, 30, tzinfo=UTC)
        db.add_forecast(
            "DIS", STEPS, issued_at=issued, last_observed_date=date(2025, 10, 8), last_close=99.5
        )

        message = _next_event(messages)

    assert message["event"] == "forecast.ready"
    data = json.loads(message["data"])
    assert data["id"] == int(message["id"])
    assert (data["type"], data["symbol"]) == ("forecast.ready", "DIS")
    assert datetime.fromisoformat(data["payload"]["issued_at"]) == issued
    assert data["payload"]["steps"] == 1


def test_every_client_gets_every_event_and_filters_apply(
    api_database_url: str, prices_dir: Path, db: Any
) -> None:
    with (
        _serve(_config(api_database_url, prices_dir)) as base,
        _events(base) as everything,
        _events(base, symbol="ko", types=["model.promoted", "model.rejected"]) as ko_models,
    ):
        _wait_until_live(everything)
        _wait_until_live(ko_models)
        db.append_event(
            ModelPromoted(model_version_id=1, previous_champion_id=None, reason="ok", metrics={}),
            "DIS",
        )
        db.append_event(
            JobFailed(job_id="x", kind="ingest", status="failed", error="boom", attempts=1), "KO"
        )
        db.append_event(ModelRejected(model_version_id=2, reason="worse", metrics={}), "KO")

        seen = [_next_event(everything)["event"] for _ in range(3)]
        filtered = _next_event(ko_models)

    assert seen == ["model.promoted", "job.failed", "model.rejected"]
    assert filtered["event"] == "model.rejected"
    assert json.loads(filtered["data"])["payload"]["reason"] == "worse"


def test_a_reconnecting_client_resumes_after_its_last_event(
    api_database_url: str, prices_dir: Path, db: Any
) -> None:
    first = db.append_event(SymbolAdded(horizon=3, lookback=10, retrain_cadence="weekly"), "DIS")
    second = db.append_event(JobQueued(job_id="a", kind="ingest"), "DIS")
    third = db.append_event(JobSucceeded(job_id="a", kind="ingest", result={}), "DIS")

    with _serve(_config(api_database_url, prices_dir)) as base:
        with _events(base, headers={"Last-Event-ID": str(first)}) as resumed:
            _wait_until_live(resumed)
            replayed = [_next_event(resumed) for _ in range(2)]
            fourth = db.append_event(
                PricesIngested(
                    rows=5,
                    first_date=date(2024, 1, 2),
                    last_date=date(2024, 1, 8),
                    source="csv",
                    via="ingest",
                ),
                "DIS",
            )
            live = _next_event(resumed)
        with _events(base, after=third) as from_query:
            _wait_until_live(from_query)
            after_third = _next_event(from_query)

    assert [int(message["id"]) for message in replayed] == [second, third]
    assert (int(live["id"]), live["event"]) == (fourth, "prices.ingested")
    assert int(after_third["id"]) == fourth


def test_a_malformed_last_event_id_is_400_and_bad_filters_are_422(client: TestClient[Any]) -> None:
    # "\xb2" (superscript two) and "1\xb9" pass str.isdigit() and fail int(): they were a 500.
    # The header's documented pattern (up to 18 ASCII digits) refuses them: malformed, a 400.
    for malformed in ("not-a-number", "\xb2", "1\xb9", "-3", "9" * 20, "null"):
        response = client.get("/events", headers={"Last-Event-ID": malformed.encode("latin-1")})
        assert response.status_code == 400, malformed
        problem = response.json()
        assert problem["type"] == "urn:stockcast:problem:malformed-header"
        assert problem["detail"].startswith("Last-Event-ID: expected an event id")
        assert problem["errors"][0]["source"] == "header"
    assert client.get("/events?types=nonsense").status_code == 422
    assert client.get("/events?after=-1").status_code == 422


def test_a_resume_point_beyond_the_newest_event_gets_a_reset_then_the_live_stream(
    api_database_url: str, prices_dir: Path, db: Any
) -> None:
    # A browser after the database was reset remembers an id the database never reached.
    newest = db.append_event(SymbolAdded(horizon=3, lookback=10, retrain_cadence="weekly"), "DIS")
    with _serve(_config(api_database_url, prices_dir)) as base:
        for resume in ({"headers": {"Last-Event-ID": "1000000"}}, {"after": 1_000_000}):
            with _events(base, **resume) as messages:
                _wait_until_live(messages)
                reset = _next_event(messages)
                live_id = db.append_event(JobQueued(job_id="b", kind="ingest"), "DIS")
                live = _next_event(messages)
            assert reset["event"] == "reset"
            assert int(reset["id"]) >= newest
            assert json.loads(reset["data"])["requested"] == 1_000_000
            assert (int(live["id"]), live["event"]) == (live_id, "job.queued")
