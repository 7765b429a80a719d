"""The API against its own OpenAPI document, with schemathesis: generated requests to every
operation never get a 5xx, and every response (status, content type, headers, body) is one the
document describes.

Bounded in time: a few examples per operation (``max_examples``), no deadline per example, the
event stream cut after a second. ``positive_data_acceptance`` is not among the checks: some rules
are not expressible in JSON Schema (``end_date`` after ``start_date``, ``lookback_days`` at least
the model's window), so a schema-valid request may rightly get a 422.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from db.repositories import ForecastStepRecord
from forecasting.artifacts import ModelArtifact
from stockcast.schema import head_revision
from web.app import create_app
from web.config import WebConfig

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 12
STREAM_SECONDS = 1.0


def _seed(db: Any, artifact: ModelArtifact, bars: list[Any]) -> dict[str, Any]:
    """A symbol with prices, a champion and a forecast, so generated requests also hit data."""
    db.watch("DIS")
    db.add_bars("DIS", bars)
    version = db.add_model("DIS", artifact, model_name="disney_v1", metrics={"lstm_mase": 0.9})
    db.add_forecast(
        "DIS",
        [
            ForecastStepRecord(
                step=1,
                target_date=date(2025, 10, 9),
                point=112.0,
                lower_80=110.0,
                upper_80=114.0,
                lower_95=108.0,
                upper_95=116.0,
                naive=111.9,
            )
        ],
        issued_at=datetime(2025, 10, 8, 21, 30, tzinfo=UTC),
        last_observed_date=date(2025, 10, 8),
        last_close=111.9,
        model_kind="lstm",
        model_version_id=version,
    )
    return {"symbol": "DIS", "model_id": version}


@pytest.mark.slow
def test_every_operation_conforms_to_the_openapi_document(
    api_database_url: str,
    prices_dir: Path,
    db: Any,
    tiny_artifact: ModelArtifact,
    bars_of: Any,
    auth: dict[str, str],
) -> None:
    known = _seed(db, tiny_artifact, bars_of("DIS", last=40))
    config = WebConfig(
        database_url=api_database_url,
        expected_revision=head_revision(),
        api_keys=(auth["X-API-Key"],),
        source=f"csv:{prices_dir}",
        rate_limit_per_minute=100_000,
        sse_heartbeat_s=0.25,
        event_poll_interval_s=0.05,
    )
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", create_app(config))
    operations = [result.ok() for result in schema.get_all_operations()]
    statuses: dict[str, set[int]] = {}
    try:
        assert len(operations) >= 16
        for operation in operations:
            label = f"{operation.method.upper()} {operation.path}"
            seen = statuses.setdefault(label, set())
            known_path = {
                name: known[name]
                for name in ("symbol", "model_id")
                if f"{{{name}}}" in operation.path
            }
            strategies = [operation.as_strategy()]
            if known_path:
                strategies.append(operation.as_strategy(path_parameters=known_path))
            if label == "POST /predict":
                strategies.append(operation.as_strategy(body={"symbol": "DIS"}))
            for strategy in strategies:
                _exercise(strategy, auth, seen, streaming=operation.path == "/events")
    finally:
        shutdown_lifespans()
    # The run reached the data, not just the error paths.
    assert 200 in statuses["GET /symbols/{symbol}/forecast"], statuses
    assert 200 in statuses["POST /predict"], statuses
    assert 200 in statuses["GET /models/{model_id}"], statuses
    assert 201 in statuses["POST /symbols"], statuses
    assert 202 in statuses["POST /train"], statuses
    assert 200 in statuses["GET /events"], statuses


def _exercise(strategy: Any, auth: dict[str, str], seen: set[int], *, streaming: bool) -> None:
    @settings(
        max_examples=3 if streaming else EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        response = case.call(headers=auth, timeout=STREAM_SECONDS if streaming else 30)
        seen.add(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=auth)

    check()
