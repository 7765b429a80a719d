"""The API against its own OpenAPI document, with schemathesis and every one of its checks: on
each backend, generated requests (positive and negative, every phase: the document's examples,
coverage of each parameter's edges, random fuzzing, and stateful sequences along the links
schemathesis infers) never get a 5xx, and every answer is one the document describes: status,
content type, headers, body, the event stream's messages, ``Allow``, refusals of invalid input,
acceptance of valid input, and a 404 after a ``DELETE``.

The runner is ``bench/fuzz.py``'s, so CI and the longer benchmark in the README apply the same
checks with the same configuration; CI runs a few examples per operation (``EXAMPLES``). The only
allowance is that list's ``RULES_BEYOND_JSON_SCHEMA``: the few operations whose schema-valid
requests may rightly be a 422 (``from`` after ``to``, a ticker the price source does not have):
``positive_data_acceptance`` accepts a 422 from those, nothing else.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from litestar.testing import TestClient

from db.repositories import ForecastStepRecord
from forecasting.artifacts import ModelArtifact
from stockcast.schema import head_revision
from web.app import create_app
from web.config import WebConfig

#: Examples per operation and phase: about a thousand requests per backend, ~1 min on 2 cores.
EXAMPLES = 3
BENCH_FUZZ = Path(__file__).resolve().parents[3] / "bench" / "fuzz.py"


def _bench_fuzz() -> ModuleType:
    """``bench/fuzz.py`` (bench is scripts, not a package): its runner and configuration."""
    spec = importlib.util.spec_from_file_location("bench_fuzz", BENCH_FUZZ)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


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
def test_every_operation_conforms_to_the_openapi_document_under_every_check(
    api_database_url: str,
    prices_dir: Path,
    db: Any,
    tiny_artifact: ModelArtifact,
    bars_of: Any,
    auth: dict[str, str],
) -> None:
    _seed(db, tiny_artifact, bars_of("DIS", last=40))
    config = WebConfig(
        database_url=api_database_url,
        expected_revision=head_revision(),
        api_keys=(auth["X-API-Key"],),
        source=f"csv:{prices_dir}",
        rate_limit_per_minute=100_000,
        sse_heartbeat_s=0.25,
        event_poll_interval_s=0.05,
    )
    fuzz = _bench_fuzz()
    figures = fuzz.run_contract(
        create_app(config), api_key=auth["X-API-Key"], max_examples=EXAMPLES
    )

    assert figures.errors == []
    assert dict(figures.failures) == {}, "\n".join(figures.examples.values())
    assert figures.server_errors == 0
    assert figures.cases >= 500
    assert {
        "not_a_server_error",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "allow_header_conformance",
        "unsupported_method",
        "use_after_free_but_history",
        "ignored_auth",
    } <= figures.checks_run
    # The run reached the data, not just the error paths.
    statuses = figures.by_operation
    assert len(statuses) >= 16, sorted(statuses)
    assert 200 in statuses["GET /symbols/{symbol}/forecast"], statuses
    assert 200 in statuses["POST /predict"], statuses
    assert 200 in statuses["GET /models/{model_id}"], statuses
    assert 201 in statuses["POST /symbols"], statuses
    # The global retrain is queued once, then refused while that one is pending.
    assert {202, 409} <= set(statuses["POST /train/global"]), statuses
    assert 202 in statuses["POST /train"], statuses
    assert 200 in statuses["GET /events"], statuses


def test_options_lists_every_method_of_the_path(client: TestClient[Any]) -> None:
    """Litestar's own OPTIONS handler kept the methods of the first route merged into a path."""
    for path, allowed in (
        ("/symbols", "DELETE, GET, OPTIONS, POST"),
        ("/symbols/DIS", "DELETE, GET, OPTIONS, PATCH"),
        ("/events", "GET, OPTIONS"),
    ):
        response = client.options(path)
        assert response.status_code == 204
        assert response.headers["allow"] == allowed


def test_the_document_says_what_a_payload_refuses(client: TestClient[Any]) -> None:
    schemas = client.get("/schema/openapi.json").json()["components"]["schemas"]
    for name in ("SymbolCreate", "SymbolUpdate", "TrainRequest", "PredictRequest"):
        assert schemas[name]["additionalProperties"] is False, name
    assert schemas["SymbolUpdate"]["minProperties"] == 1
    assert schemas["SymbolOut"].get("additionalProperties") is None  # answers may grow


def test_unknown_fields_and_empty_changes_are_refused_as_documented(
    client: TestClient[Any], auth: dict[str, str]
) -> None:
    assert client.post("/symbols", json={"symbol": "DIS"}, headers=auth).status_code == 201
    for body in ({}, {"horizon": 3, "colour": "red"}):
        response = client.patch("/symbols/DIS", json=body, headers=auth)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get("/symbols/DIS").json()["horizon"] != 3
