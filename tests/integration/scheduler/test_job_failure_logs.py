"""A job that fails for an expected reason is logged once, on one line, without a traceback; a
bug keeps its traceback (issue 13: an unknown symbol logged two tracebacks)."""

from __future__ import annotations

import logging

import pytest

from db.contracts import SymbolAdded
from db.kinds import JobKind
from db.repositories import EventRepository, SymbolRepository
from forecasting.calendar import DEFAULT_EXCHANGE
from forecasting.sources import UnknownSymbolError
from scheduler.job_logs import DropRecordedJobFailures, is_expected_failure
from scheduler.runner import JobFailedError

pytestmark = [pytest.mark.anyio]


def test_expected_failures_and_bugs_are_told_apart() -> None:
    assert is_expected_failure(UnknownSymbolError("ZZZ", source="sample"))
    assert is_expected_failure(ValueError("horizon: expected 1-30"))
    assert not is_expected_failure(KeyError("model"))
    assert not is_expected_failure(TypeError("unsupported operand"))
    record = logging.LogRecord("apscheduler", logging.ERROR, __file__, 1, "x", (), None)
    assert DropRecordedJobFailures(JobFailedError).filter(record)
    try:
        raise JobFailedError("UnknownSymbolError: ...")
    except JobFailedError:
        import sys

        record.exc_info = sys.exc_info()
    assert not DropRecordedJobFailures(JobFailedError).filter(record)


async def test_an_unknown_symbols_ingest_fails_on_one_line(
    harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with harness.node() as node, harness.client() as client:
        async with harness.sessions.begin() as session:
            await SymbolRepository(session).add(
                symbol="ZZZ", exchange=DEFAULT_EXCHANGE, horizon=3, lookback=10
            )
            await EventRepository(session).append(
                SymbolAdded(horizon=3, lookback=10, retrain_cadence="weekly"), symbol="ZZZ"
            )
        await harness.enqueue(client, JobKind.INGEST, {"symbol": "ZZZ"}, symbol="ZZZ")

        async def failed() -> bool:
            return any(job.status == "failed" for job in await harness.jobs())

        await harness.wait_for(failed, within=60, what="the ingest to fail")
        node.request_stop()
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    [line] = failures
    assert line.name == "scheduler.runner"
    assert "UnknownSymbolError" in line.getMessage() and "ZZZ" in line.getMessage()
    assert line.exc_info is None
    assert "Traceback" not in caplog.text
