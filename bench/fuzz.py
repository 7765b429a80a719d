"""Schemathesis against the API with every check, on SQLite and on PostgreSQL: how many generated
requests ran, how many failed which check, how many got a 5xx, and how long it took.

    .venv/bin/python bench/fuzz.py [--backend sqlite|postgresql|both] [--max-examples 25]
                                   [--seed 1] [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]

Each backend gets a fresh database at the migration head (a PostgreSQL one is created on the
server of ``--postgres-url`` and dropped afterwards) seeded with the watchlist of the shared prices,
forecasts and one real LSTM champion (``bench/api.py``'s), so generated requests reach data, not
only error paths. Schemathesis runs the real app in process (its ASGI transport, as the CI test
``tests/integration/web/test_openapi_contract.py`` does, with this module's :func:`run_contract`)
through all its phases (examples, coverage, fuzzing, stateful links) in positive and negative
modes with ``--checks all``. Writes ``bench/results/fuzz.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SHARED_PRICES = ROOT.parent / "shared" / "data" / "prices"
API_KEY = "bench-key-0123456789abcdef"

#: Operations where a request the document calls valid may still rightly be a 422: each rule
#: below is checked by the server but cannot be written in JSON Schema (it compares two fields,
#: or depends on stored state or the price source). ``positive_data_acceptance`` accepts a 422
#: from these operations only; every other check, and every other operation, is unchanged.
RULES_BEYOND_JSON_SCHEMA: dict[tuple[str, str], str] = {
    ("POST", "/symbols"): (
        "the price source must have the ticker; its exchange must be told from its suffix and "
        "have a calendar; a batch must not name a symbol twice in any spelling (dis, DIS)"
    ),
    ("PATCH", "/symbols/{symbol}"): "the exchange must have a calendar in exchange-calendars",
    ("POST", "/train"): (
        "start_date before end_date; prediction_steps equal to horizon when both are given; "
        "the price source must have the ticker"
    ),
    ("POST", "/predict"): "lookback_days covers, and horizon is within, the stored model's",
    ("GET", "/symbols/{symbol}/forecasts"): "from on or before to",
    ("GET", "/symbols/{symbol}/accuracy"): "from on or before to",
}
#: A symbol's history (latest forecast, forecasts with actuals, realised accuracy) under
#: ``/symbols/{symbol}/...`` stays readable after ``DELETE /symbols/{symbol}``: that removes the
#: watchlist entry (which then answers 404), not what was forecast and how it did, by design.
#: ``use_after_free`` takes every path below a deleted one for part of it, so these three reads
#: (and only they) are left out of it: :func:`use_after_free_but_history` (the stateful phase
#: ignores per-operation check settings, hence a wrapper rather than configuration).
HISTORY_KEPT_AFTER_DELETE = (
    "/symbols/{symbol}/forecast",
    "/symbols/{symbol}/forecasts",
    "/symbols/{symbol}/accuracy",
)
#: Seconds a generated request reads the endless event stream.
STREAM_SECONDS = 1.0
#: ... or until it has read this many messages.
STREAM_EVENTS = 3
#: Schemathesis's default statuses for a schema-valid request, plus 422.
_ACCEPTED_WITH_422 = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]


@dataclass
class ContractFigures:
    """What one schemathesis run found."""

    cases: int = 0
    server_errors: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    #: Operation (``GET /events``) -> the statuses it answered.
    by_operation: dict[str, set[int]] = field(default_factory=dict)
    #: Operation -> seconds its responses took, all cases together (where the time goes).
    seconds_by_operation: Counter[str] = field(default_factory=Counter)
    #: ``(check, operation)`` -> failing cases.
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: One reproduction (curl and answer) per failing ``(check, operation)``.
    examples: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: The checks that judged at least one response.
    checks_run: set[str] = field(default_factory=set)

    def summary(self) -> dict[str, Any]:
        by_check: Counter[str] = Counter()
        for (check, _), count in self.failures.items():
            by_check[check] += count
        return {
            "cases": self.cases,
            "failures": sum(self.failures.values()),
            "failures_by_check": dict(by_check),
            "server_errors": self.server_errors,
            "seconds": round(self.seconds, 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "slowest_operations_s": {
                label: round(seconds, 1)
                for label, seconds in self.seconds_by_operation.most_common(3)
            },
            "errors": self.errors,
            "checks_run": sorted(self.checks_run),
        }


def contract_config(*, max_examples: int, seed: int) -> Any:
    """Every check, both generation modes, every phase; the key on every request."""
    from schemathesis.config import SchemathesisConfig

    # One entry per operation: schemathesis applies the first entry that matches.
    operations: dict[tuple[str, str], dict[str, Any]] = {}

    def entry(method: str, path: str) -> dict[str, Any]:
        return operations.setdefault(
            (method, path), {"include-method": method, "include-path": path, "checks": {}}
        )

    for method, path in RULES_BEYOND_JSON_SCHEMA:
        entry(method, path)["checks"]["positive_data_acceptance"] = {
            "expected-statuses": _ACCEPTED_WITH_422
        }
    # The event stream never ends: each request reads it for this long (its first messages),
    # then the client hangs up, as a browser tab closed would.
    entry("GET", "/events").update(
        {"request-timeout": STREAM_SECONDS, "max-stream-events": STREAM_EVENTS}
    )
    config = SchemathesisConfig.from_dict(
        {
            "seed": seed,
            "headers": {"X-API-Key": API_KEY},
            "request-timeout": 5,
            "checks": {"enabled": True},
            "generation": {"max-examples": max_examples, "mode": "all"},
            "operations": list(operations.values()),
        }
    )
    config.projects.default.checks.update(
        included_check_names=["all"], excluded_check_names=["use_after_free"]
    )
    return config


def _register_checks() -> None:
    import schemathesis
    from schemathesis.specs.openapi.checks import use_after_free

    if "use_after_free_but_history" in schemathesis.checks.CHECKS.get_all_names():
        return

    @schemathesis.check
    def use_after_free_but_history(ctx: Any, response: Any, case: Any) -> bool | None:
        """Schemathesis's ``use_after_free``, except for the reads of a symbol's history, which
        stays after the symbol leaves the watchlist (``HISTORY_KEPT_AFTER_DELETE``)."""
        if case.method.upper() == "GET" and case.operation.path in HISTORY_KEPT_AFTER_DELETE:
            return None
        result: bool | None = use_after_free(ctx, response, case)
        return result


def run_contract(app: Any, *, api_key: str, max_examples: int, seed: int = 1) -> ContractFigures:
    """Run schemathesis's engine (what ``schemathesis run --checks all`` runs) against ``app``."""
    import schemathesis
    from schemathesis.engine import events, from_schema
    from schemathesis.python.asgi import shutdown_lifespans

    _register_checks()
    config = contract_config(max_examples=max_examples, seed=seed)
    config.projects.default.update(headers={"X-API-Key": api_key})
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app, config=config)
    figures = ContractFigures()
    started = time.monotonic()
    try:
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
                _count(figures, event.recorder)
            elif isinstance(event, events.NonFatalError):
                figures.errors.append(f"{event.label}: {event.value}")
            elif isinstance(event, events.FatalError):
                figures.errors.append(f"fatal: {event.exception}")
    finally:
        shutdown_lifespans()
    figures.seconds = time.monotonic() - started
    return figures


def _count(figures: ContractFigures, recorder: Any) -> None:
    for case_id, interaction in recorder.interactions.items():
        if interaction.response is None:
            continue
        figures.cases += 1
        status = interaction.response.status_code
        figures.statuses[status] += 1
        figures.server_errors += status >= 500
        node = recorder.cases.get(case_id)
        if node is not None:
            label = node.value.operation.label
            figures.by_operation.setdefault(label, set()).add(status)
            figures.seconds_by_operation[label] += interaction.response.elapsed
    for case_id, checks in recorder.checks.items():
        for check in checks:
            figures.checks_run.add(check.name)
            if check.status != "failure":
                continue
            key = (check.name, recorder.label)
            figures.failures[key] += 1
            if check.failure_info is not None and f"{key}" not in figures.examples:
                answer = recorder.interactions.get(case_id)
                response = answer.response if answer is not None else None
                figures.examples[f"{key}"] = (
                    f"{check.failure_info.failure.title}: {check.failure_info.code_sample}"
                    + (
                        f"\n-> {response.status_code} {response.content[:300]!r}"
                        if response is not None
                        else ""
                    )
                )


# --------------------------------------------------------------------------- the databases


@contextmanager
def database(backend: str, postgres_url: str) -> Iterator[str]:
    """A fresh database at the migration head; a PostgreSQL one is dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from stockcast.schema import upgrade_database

    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            url = f"sqlite:///{directory}/stockcast.db"
            upgrade_database(url)
            yield url
        return
    admin = make_url(postgres_url)
    name = f"stockcast_fuzz_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin.set(drivername="postgresql", database=name).render_as_string(
            hide_password=False
        )
        upgrade_database(url)
        yield url
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def run_backend(
    backend: str, postgres_url: str, *, model: Any, max_examples: int, seed: int
) -> ContractFigures:
    from api import seed as seed_database  # bench/api.py: the same seeded store

    from stockcast.schema import head_revision
    from web.app import create_app
    from web.config import WebConfig

    artifact, bars = model
    names = sorted(path.stem for path in SHARED_PRICES.glob("*.csv"))
    with database(backend, postgres_url) as url:
        asyncio.run(seed_database(url, names, artifact, bars))
        config = WebConfig(
            database_url=url,
            expected_revision=head_revision(),
            api_keys=(API_KEY,),
            source=f"csv:{SHARED_PRICES}",
            rate_limit_per_minute=1_000_000,
            sse_heartbeat_s=0.25,
            event_poll_interval_s=0.05,
        )
        return run_contract(
            create_app(config), api_key=API_KEY, max_examples=max_examples, seed=seed
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--max-examples", type=int, default=25, help="per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    from api import train_bench_model

    model = train_bench_model(SHARED_PRICES)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, Any] = {}
    for backend in backends:
        figures = run_backend(
            backend,
            args.postgres_url,
            model=model,
            max_examples=args.max_examples,
            seed=args.seed,
        )
        results[backend] = figures.summary()
        print(f"{backend}: {json.dumps(results[backend])}")
        for key, example in figures.examples.items():
            print(f"  FAILURE {key}\n    {example}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fuzz.json").write_text(
        json.dumps({"max_examples": args.max_examples, "seed": args.seed, **results}, indent=2)
    )
    failed = any(r["failures"] or r["server_errors"] or r["errors"] for r in results.values())
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
