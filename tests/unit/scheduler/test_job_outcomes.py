"""How APScheduler's verdicts and exceptions are turned into job records."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from apscheduler import JobOutcome, JobReleased
from sqlalchemy.exc import OperationalError

from forecasting.bars import empty_bars
from forecasting.sources import (
    NoDataError,
    RateLimitedError,
    SourceTimeoutError,
    SourceUnavailableError,
    UnknownSymbolError,
)
from forecasting.symbols import InvalidSymbolError
from forecasting.validation import InvalidBarsError, validate_bars
from scheduler.outcomes import outcome_error, symbol_of_schedule
from scheduler.runner import ERROR_TEXT_LIMIT, describe_error, is_transient


@pytest.mark.parametrize(
    "error",
    [
        RateLimitedError(source="yfinance"),
        SourceTimeoutError(source="yfinance", timeout=10),
        SourceUnavailableError(source="yfinance", detail="HTTP 503"),
        TimeoutError(),
        OperationalError("SELECT 1", {}, Exception("database is locked")),
    ],
)
def test_transient_errors_are_retried(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        UnknownSymbolError("ZZZZ", source="csv:x"),
        NoDataError("DIS", source="csv:x"),
        InvalidSymbolError("a/b"),
        InvalidBarsError(validate_bars(empty_bars())),
        ValueError("bad"),
    ],
)
def test_permanent_errors_are_not(error: Exception) -> None:
    assert not is_transient(error)


def test_error_text_names_the_type_and_stays_short() -> None:
    assert describe_error(UnknownSymbolError("ZZZZ", source="csv:d")) == (
        "UnknownSymbolError: csv:d: unknown symbol 'ZZZZ'"
    )
    assert describe_error(RuntimeError()) == "RuntimeError: (no message)"
    long = describe_error(ValueError("x" * 10_000))
    assert len(long) == ERROR_TEXT_LIMIT and long.endswith("...")


def test_only_per_symbol_schedules_have_a_symbol() -> None:
    assert symbol_of_schedule("ingest:DIS") == "DIS"
    assert symbol_of_schedule("refresh:XNYS") is None  # an exchange's schedule
    assert symbol_of_schedule("retrain:BRK-B") == "BRK-B"
    assert symbol_of_schedule("sync_schedules") is None
    assert symbol_of_schedule("backup:DIS") is None
    assert symbol_of_schedule(None) is None


def _released(outcome: JobOutcome, **extra: object) -> JobReleased:
    return JobReleased(
        job_id=uuid4(),
        scheduler_id="host-1-abc",
        task_id="ingest",
        schedule_id="ingest:DIS",
        scheduled_start=datetime(2025, 11, 28, 18, 30, tzinfo=UTC),
        started_at=None,
        outcome=outcome,
        **extra,  # type: ignore[arg-type]
    )


def test_each_outcome_gets_a_readable_reason() -> None:
    assert (
        outcome_error(
            _released(
                JobOutcome.error, exception_type="builtins.ValueError", exception_message="no"
            )
        )
        == "ValueError: no"
    )
    assert "2025-11-28T18:30:00+00:00" in outcome_error(_released(JobOutcome.missed_start_deadline))
    assert "host-1-abc stopped" in outcome_error(_released(JobOutcome.abandoned))
    assert "shut down" in outcome_error(_released(JobOutcome.cancelled))
    assert "deserialization" in outcome_error(_released(JobOutcome.deserialization_failed))
