"""The ``csv:DIR`` source: symbol-to-file mapping without path building, validation, adjustment."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.bars import BAR_COLUMNS, read_bars_csv
from forecasting.sources import (
    SAMPLE_DIRECTORY,
    CorruptSourceDataError,
    CsvSource,
    InvalidDateRangeError,
    NoDataError,
    PriceSource,
    SourceDirectoryError,
    UnknownSymbolError,
    make_source,
)
from forecasting.symbols import InvalidSymbolError
from forecasting.validation import InvalidBarsError

HEADER = "date,open,high,low,close,adj_close,volume\n"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


#: A directory of real price files inside the repository: the bundled sample, read as ``csv:DIR``.
PRICES = SAMPLE_DIRECTORY


def test_reads_real_price_files() -> None:
    source = CsvSource(PRICES)

    bars = source.fetch("spy", date(2020, 1, 2), date(2020, 1, 31))

    assert isinstance(source, PriceSource)
    assert source.name == f"csv:{PRICES}"
    assert list(bars.columns) == list(BAR_COLUMNS)
    # January 2020 had 21 NYSE sessions (New Year's Day and MLK day closed).
    assert len(bars) == 21
    assert bars["date"].iloc[0] == pd.Timestamp("2020-01-02")
    assert bars["date"].iloc[-1] == pd.Timestamp("2020-01-31")
    assert bars["date"].is_monotonic_increasing
    # Already-adjusted files (empty adj_close) come back exactly as written.
    raw = read_bars_csv(str(PRICES / "SPY.csv"))
    raw_january = raw[(raw["date"] >= "2020-01-02") & (raw["date"] <= "2020-01-31")]
    np.testing.assert_array_equal(bars["close"].to_numpy(), raw_january["close"].to_numpy())


def test_open_ended_ranges() -> None:
    source = CsvSource(PRICES)

    head = source.fetch("SPY", end=date(1999, 11, 3))
    tail = source.fetch("SPY", start=date(2020, 8, 27))

    assert [d.date() for d in head["date"]] == [
        date(1999, 11, 1),
        date(1999, 11, 2),
        date(1999, 11, 3),
    ]
    assert [d.date() for d in tail["date"]] == [date(2020, 8, 27), date(2020, 8, 28)]


def test_only_exact_symbol_file_names_are_listed(tmp_path: Path) -> None:
    good = HEADER + "2024-01-02,10,11,9,10.5,,100\n"
    write(tmp_path, "AAPL.csv", good)
    write(tmp_path, "BRK-B.csv", good)
    write(tmp_path, "msft.csv", good)  # lower case: not an exact symbol name
    write(tmp_path, "BAD NAME.csv", good)
    write(tmp_path, "NOTES.txt", good)
    write(tmp_path, ".csv", good)
    (tmp_path / "DIR.csv").mkdir()

    source = CsvSource(tmp_path)

    assert source.fetch("brk-b")["close"].tolist() == [10.5]
    assert source.fetch("AAPL")["close"].tolist() == [10.5]
    with pytest.raises(UnknownSymbolError, match="unknown symbol 'MSFT'"):
        source.fetch("MSFT")
    with pytest.raises(UnknownSymbolError):
        source.fetch("DIR")


def test_a_symbol_never_becomes_a_path(tmp_path: Path) -> None:
    inside = tmp_path / "prices"
    inside.mkdir()
    write(tmp_path, "KO.csv", HEADER + "2024-01-02,10,11,9,10.5,,100\n")  # outside the directory
    source = CsvSource(inside)

    with pytest.raises(InvalidSymbolError):
        source.fetch("../KO")
    with pytest.raises(UnknownSymbolError):
        source.fetch("KO")


def test_bad_rows_are_refused_or_dropped(tmp_path: Path) -> None:
    write(
        tmp_path,
        "BAD.csv",
        HEADER
        + "2024-01-02,10,11,9,10.5,,100\n"
        + "2024-01-03,10,11,9,10.5,,-1\n"
        + "2024-01-04,10,9,9,10.5,,100\n"
        + "2024-01-05,10,11,9,10.5,,100\n",
    )
    source = CsvSource(tmp_path)

    with pytest.raises(InvalidBarsError) as caught:
        source.fetch("BAD")
    problems = [(p.row, p.date, p.reason) for p in caught.value.report.problems]
    assert problems == [
        (1, date(2024, 1, 3), "negative volume -1"),
        (2, date(2024, 1, 4), "high 9 below max(open, close) 10.5"),
    ]

    kept = source.fetch("BAD", drop_bad=True)
    assert [d.date() for d in kept["date"]] == [date(2024, 1, 2), date(2024, 1, 5)]


def test_raw_prices_with_adj_close_are_adjusted_so_a_split_is_no_crash(tmp_path: Path) -> None:
    # A 7:1 split between the 6th and the 9th: the raw close drops from 645.57 to 93.70; the
    # adjusted close (raw / 7 before the split) runs on smoothly.
    write(
        tmp_path,
        "SPLIT.csv",
        HEADER
        + "2014-06-05,637.99,647.89,636.11,647.35,92.478571,75951400\n"
        + "2014-06-06,649.90,651.26,644.47,645.57,92.224286,87484600\n"
        + "2014-06-09,92.70,93.88,91.75,93.70,93.70,75415000\n",
    )

    bars = CsvSource(tmp_path).fetch("SPLIT")

    assert bars["close"].tolist() == pytest.approx([92.478571, 92.224286, 93.70])
    assert bars["open"].tolist() == pytest.approx([637.99 / 7, 649.90 / 7, 92.70], rel=1e-6)
    assert bars["high"][1] == pytest.approx(651.26 / 7, rel=1e-6)
    assert bars["low"][0] == pytest.approx(636.11 / 7, rel=1e-6)
    assert np.abs(np.diff(np.log(bars["close"].to_numpy()))).max() < 0.02
    assert bars["volume"].tolist() == [75951400, 87484600, 75415000]


def test_corrupt_files_are_named_errors(tmp_path: Path) -> None:
    write(tmp_path, "NOCLOSE.csv", "date,open,high,low,adj_close,volume\n2024-01-02,1,1,1,,1\n")
    write(tmp_path, "BADDATE.csv", HEADER + "yesterday,10,11,9,10.5,,100\n")
    write(tmp_path, "EMPTY.csv", "")
    source = CsvSource(tmp_path)

    with pytest.raises(CorruptSourceDataError, match="close"):
        source.fetch("NOCLOSE")
    with pytest.raises(CorruptSourceDataError, match="BADDATE"):
        source.fetch("BADDATE")
    with pytest.raises(CorruptSourceDataError, match="EMPTY"):
        source.fetch("EMPTY")


def test_range_errors() -> None:
    source = CsvSource(PRICES)

    with pytest.raises(NoDataError, match=r"no bars for SPY in 1990-01-01 \.\. 1990-12-31"):
        source.fetch("SPY", date(1990, 1, 1), date(1990, 12, 31))
    with pytest.raises(NoDataError):
        source.fetch("SPY", date(2020, 1, 18), date(2020, 1, 20))  # a weekend and MLK day
    with pytest.raises(InvalidDateRangeError):
        source.fetch("SPY", date(2020, 2, 1), date(2020, 1, 1))


def test_make_source_and_missing_directories(tmp_path: Path) -> None:
    source = make_source(f"csv:{PRICES}")
    assert isinstance(source, CsvSource)
    assert source.directory == PRICES

    missing = tmp_path / "nowhere"
    with pytest.raises(SourceDirectoryError):
        CsvSource(missing)
    with pytest.raises(ValueError, match="does not exist"):
        make_source(f"csv:{missing}")
    with pytest.raises(ValueError, match="expected yfinance, csv:DIR or sample"):
        make_source("ftp://example")
