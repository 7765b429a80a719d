"""The refresh's pieces that need no database: batches, and the batch job's arguments as stored."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest

from db.contracts import JobRequest, RefreshArguments, RefreshBatchArguments, decode_arguments
from db.kinds import JobKind
from scheduler.refresh import split


def test_symbols_are_split_into_batches_of_at_most_the_size_in_order() -> None:
    symbols = [f"S{n}" for n in range(7)]
    assert split(symbols, 3) == [["S0", "S1", "S2"], ["S3", "S4", "S5"], ["S6"]]
    assert split(symbols, 100) == [symbols]
    assert split([], 5) == []


def test_a_batch_jobs_arguments_survive_the_data_store_as_json() -> None:
    request = JobRequest.refresh_batch("XNYS", date(2026, 11, 27), ["DIS", "KO"])
    assert request.symbol is None  # recorded under no symbol: it concerns many
    stored = request.kwargs  # what APScheduler keeps (JSON)
    assert stored == {"exchange": "XNYS", "session": "2026-11-27", "symbols": ["DIS", "KO"]}
    decoded = decode_arguments(JobKind.REFRESH_BATCH, stored)
    assert decoded == RefreshBatchArguments(
        exchange="XNYS", session=date(2026, 11, 27), symbols=["DIS", "KO"]
    )
    with pytest.raises(msgspec.ValidationError, match="symbols"):
        decode_arguments(JobKind.REFRESH_BATCH, {**stored, "symbols": "DIS"})
    assert JobRequest.refresh("BVMF").kwargs == {"exchange": "BVMF"}
    registered = JobRequest.refresh("BVMF", ["PETR4.SA", "VALE3.SA"]).kwargs
    assert registered == {"exchange": "BVMF", "symbols": ["PETR4.SA", "VALE3.SA"]}
    assert decode_arguments(JobKind.REFRESH, registered) == RefreshArguments(
        exchange="BVMF", symbols=["PETR4.SA", "VALE3.SA"]
    )
