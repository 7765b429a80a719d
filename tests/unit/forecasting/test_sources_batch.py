"""Batches of symbols from the CSV and sample sources, suffixed tickers as file names, and the CSV
source's caches: no directory listing and no re-validation of an unchanged file on every fetch."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from forecasting.exchanges import UnknownExchangeError
from forecasting.sources import (
    CsvSource,
    InvalidDateRangeError,
    NoDataError,
    SampleSource,
    UnknownSymbolError,
    csv_directory,
)
from forecasting.sources.batch import (
    BatchPriceSource,
    DuplicateRequestError,
    FetchRequest,
    checked_requests,
    chunked,
    fetch_batch,
)
from forecasting.symbols import InvalidSymbolError
from forecasting.validation import InvalidBarsError

HEADER = "date,open,high,low,close,adj_close,volume\n"
GOOD = HEADER + "2019-01-02,22,23,21,22.5,,100\n2019-01-03,22.5,24,22,23.5,,120\n"


def write(directory: Path, name: str, text: str = GOOD) -> Path:
    path = directory / name
    path.write_text(text)
    return path


class Counter:
    """Counts the calls of a real function and passes them through."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.real(*args, **kwargs)


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> Counter:
    counter = Counter(os.scandir)
    monkeypatch.setattr(csv_directory.os, "scandir", counter)
    return counter


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counter:
    counter = Counter(csv_directory.read_bars_csv)
    monkeypatch.setattr(csv_directory, "read_bars_csv", counter)
    return counter


def test_suffixed_and_index_tickers_are_file_names(tmp_path: Path) -> None:
    write(tmp_path, "PETR4.SA.csv")
    write(tmp_path, "^BVSP.csv")
    write(tmp_path, "vale3.sa.csv")  # lower case: not an exact symbol name
    write(tmp_path, "ITUB4..SA.csv")  # not a valid symbol
    source = CsvSource(tmp_path)

    bars = source.fetch("petr4.sa")

    assert bars["close"].tolist() == [22.5, 23.5]
    assert source.fetch("^bvsp", end=date(2019, 1, 2))["close"].tolist() == [22.5]
    with pytest.raises(UnknownSymbolError, match=r"VALE3\.SA"):
        source.fetch("VALE3.SA")
    with pytest.raises(InvalidSymbolError):
        source.fetch("ITUB4..SA")


def test_many_fetches_list_the_directory_once(
    tmp_path: Path, listings: Counter, reads: Counter
) -> None:
    write(tmp_path, "PETR4.SA.csv")
    write(tmp_path, "KO.csv")
    source = CsvSource(tmp_path)

    for _ in range(5):
        source.fetch("PETR4.SA")
        source.fetch("KO", start=date(2019, 1, 3))

    assert listings.calls == 1
    assert reads.calls == 2


def test_a_new_file_is_found_and_a_removed_one_is_unknown(
    tmp_path: Path, listings: Counter
) -> None:
    write(tmp_path, "KO.csv")
    source = CsvSource(tmp_path)
    source.fetch("KO")

    write(tmp_path, "VALE3.SA.csv")
    assert len(source.fetch("VALE3.SA")) == 2
    (tmp_path / "KO.csv").unlink()
    with pytest.raises(UnknownSymbolError):
        source.fetch("KO")
    assert listings.calls >= 2


def test_a_file_that_arrives_in_the_same_clock_tick_is_still_found(tmp_path: Path) -> None:
    write(tmp_path, "KO.csv")
    source = CsvSource(tmp_path)
    source.fetch("KO")
    before = tmp_path.stat()

    write(tmp_path, "PETR4.SA.csv")
    os.utime(tmp_path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as if nothing changed

    assert len(source.fetch("PETR4.SA")) == 2


def test_a_changed_file_is_read_and_validated_again(tmp_path: Path, reads: Counter) -> None:
    path = write(tmp_path, "PETR4.SA.csv")
    source = CsvSource(tmp_path)
    assert len(source.fetch("PETR4.SA")) == 2
    assert len(source.fetch("PETR4.SA")) == 2
    assert reads.calls == 1

    path.write_text(GOOD + "2019-01-04,23.5,24,23,23.8,,90\n")
    assert source.fetch("PETR4.SA")["close"].iloc[-1] == 23.8
    assert reads.calls == 2

    # Replaced by a rename (a new inode), as a downloader writes files.
    replacement = write(tmp_path, "incoming.tmp", GOOD.replace("23.5,,120", "23.6,,120"))
    replacement.replace(path)
    assert source.fetch("PETR4.SA")["close"].iloc[-1] == 23.6
    assert reads.calls == 3

    # A file that turns bad is refused, not served from the cache.
    path.write_text(GOOD + "2019-01-04,23.5,23,23,23.8,,90\n")
    with pytest.raises(InvalidBarsError):
        source.fetch("PETR4.SA")


def test_a_clean_file_is_read_once_for_a_backfills_two_questions(
    tmp_path: Path, reads: Counter
) -> None:
    """A backfill asks for the newest valid bar (lenient), then fetches (strict): one read of a
    clean file serves both. A file with a bad row answers the lenient question without it and
    refuses the strict one, every time."""
    write(tmp_path, "KO.csv")
    write(tmp_path, "BAD.csv", GOOD + "2019-01-04,23.5,23,23,23.8,,90\n")
    source = CsvSource(tmp_path)

    assert source.newest_date("KO") == date(2019, 1, 3)
    assert len(source.fetch("KO")) == 2
    assert reads.calls == 1

    assert source.newest_date("BAD") == date(2019, 1, 3)  # the bad 4 January row left out
    for _ in range(2):
        with pytest.raises(InvalidBarsError):
            source.fetch("BAD")
    assert source.newest_date("BAD") == date(2019, 1, 3)
    assert reads.calls == 4  # BAD: once leniently (cached), twice strictly (refused)


def test_the_cache_keeps_only_the_most_recently_used_files(tmp_path: Path, reads: Counter) -> None:
    for name in ("A", "B", "C"):
        write(tmp_path, f"{name}.csv")
    source = CsvSource(tmp_path, cache_size=2)

    for name in ("A", "B", "A", "C", "A", "B"):
        source.fetch(name)

    # A, B read; A cached; C read (B dropped); A cached; B read again.
    assert reads.calls == 4


def test_a_batch_fails_each_bad_symbol_alone(tmp_path: Path) -> None:
    write(tmp_path, "PETR4.SA.csv")
    write(tmp_path, "KO.csv")
    write(tmp_path, "BAD.csv", GOOD + "2019-01-04,23.5,23,23,23.8,,90\n")
    source = CsvSource(tmp_path)
    assert isinstance(source, BatchPriceSource)

    result = fetch_batch(
        source,
        [
            FetchRequest(symbol="petr4.sa"),
            FetchRequest(symbol="KO", start=date(2019, 1, 3)),
            FetchRequest(symbol="MISSING"),
            FetchRequest(symbol="BAD"),
            FetchRequest(symbol="../KO"),
            FetchRequest(symbol="XOM.SA", start=date(2019, 2, 1), end=date(2019, 1, 1)),
            FetchRequest(symbol="ITUB4.SA", exchange="B3"),
        ],
    )

    assert sorted(result.fetched) == ["KO", "PETR4.SA"]
    assert result.fetched["KO"].bars["close"].tolist() == [23.5]
    assert result.fetched["PETR4.SA"].listing is None
    assert {symbol: type(error) for symbol, error in result.failed.items()} == {
        "MISSING": UnknownSymbolError,
        "BAD": InvalidBarsError,
        "../KO": InvalidSymbolError,
        "XOM.SA": InvalidDateRangeError,
        "ITUB4.SA": UnknownExchangeError,
    }

    lenient = fetch_batch(source, [FetchRequest(symbol="BAD")], drop_bad=True)
    assert len(lenient.fetched["BAD"].bars) == 2


def test_the_sample_serves_batches_too() -> None:
    result = fetch_batch(
        SampleSource(),
        [
            FetchRequest(symbol="SPY", start=date(2020, 1, 2), end=date(2020, 1, 10)),
            FetchRequest(symbol="AAPL", start=date(1990, 1, 1), end=date(1990, 2, 1)),
        ],
    )

    assert result.fetched["SPY"].bars["date"].iloc[0] == pd.Timestamp("2020-01-02")
    assert isinstance(result.failed["AAPL"], NoDataError)


def test_requests_are_checked_before_any_io() -> None:
    accepted, failed = checked_requests(
        [FetchRequest(symbol="petr4.sa", exchange="bmf"), FetchRequest(symbol="a/b")]
    )

    assert accepted == {"PETR4.SA": FetchRequest(symbol="PETR4.SA", exchange="BVMF")}
    assert isinstance(failed["a/b"], InvalidSymbolError)
    with pytest.raises(DuplicateRequestError, match="KO is requested more than once"):
        checked_requests([FetchRequest(symbol="KO"), FetchRequest(symbol="ko")])


def test_chunked() -> None:
    requests = [FetchRequest(symbol=f"S{i}") for i in range(5)]
    assert [[r.symbol for r in chunk] for chunk in chunked(requests, 2)] == [
        ["S0", "S1"],
        ["S2", "S3"],
        ["S4"],
    ]
    with pytest.raises(ValueError, match="at least 1"):
        chunked(requests, 0)
