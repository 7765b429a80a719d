"""What a source says about a symbol before a job runs: its newest bar, and whether it has it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from forecasting.sources import (
    CsvSource,
    NoDataError,
    SampleSource,
    SourceTimeoutError,
    UnknownSymbolError,
)
from forecasting.sources.availability import (
    StaticPriceSource,
    SymbolUnavailableError,
    check_symbol_available,
    newest_bar_date,
)

HEADER = "date,open,high,low,close,adj_close,volume\n"


def _write(directory: Path, symbol: str, rows: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{symbol}.csv").write_text(HEADER + "".join(rows), encoding="utf-8")


def test_the_sample_names_its_symbols_and_newest_bars() -> None:
    sample = SampleSource()
    assert isinstance(sample, StaticPriceSource)
    assert sample.symbols() == ["AAPL", "GOOG", "INTC", "SPY"]
    assert newest_bar_date(sample, "spy") == date(2020, 8, 28)
    assert newest_bar_date(sample, "INTC") == date(2004, 4, 8)


def test_newest_bar_leaves_out_a_bad_last_row(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "ABC",
        [
            "2020-01-02,10,11,9,10.5,,100\n",
            "2020-01-03,10,11,9,10.5,,100\n",
            "2020-01-06,10,9,11,10.5,,100\n",  # high below low: a bad row
        ],
    )
    assert CsvSource(tmp_path).newest_date("ABC") == date(2020, 1, 3)


def test_a_static_source_refuses_a_symbol_it_lacks_and_names_what_it_has() -> None:
    with pytest.raises(SymbolUnavailableError) as caught:
        check_symbol_available(SampleSource(), "dis", today=date(2026, 11, 30))
    message = str(caught.value)
    assert "DIS" in message and "unknown symbol" in message
    assert "AAPL, GOOG, INTC, SPY" in message
    assert caught.value.known == ("AAPL", "GOOG", "INTC", "SPY")
    check_symbol_available(SampleSource(), "intc", today=date(2026, 11, 30))  # no error


def test_a_long_listing_is_cut_short(tmp_path: Path) -> None:
    for index in range(15):
        _write(tmp_path, f"S{index:02d}", ["2020-01-02,10,11,9,10.5,,100\n"])
    with pytest.raises(SymbolUnavailableError, match=r"S11 and 3 more"):
        check_symbol_available(CsvSource(tmp_path), "XYZ", today=date(2026, 11, 30))


class StandInYahoo:
    """The network edge: answers as Yahoo would for a known, an unknown and a silent ticker."""

    name = "yfinance"

    def __init__(self) -> None:
        self.asked: list[tuple[str, date | None, date | None]] = []

    def fetch(
        self,
        symbol: str,
        start: date | None = None,
        end: date | None = None,
        *,
        drop_bad: bool = False,
    ) -> pd.DataFrame:
        self.asked.append((symbol, start, end))
        if symbol == "NOPE":
            raise UnknownSymbolError(symbol, source=self.name)
        if symbol == "GONE":
            raise NoDataError(symbol, source=self.name, start=start, end=end)
        if symbol == "SLOW":
            raise SourceTimeoutError(source=self.name, timeout=1.0)
        return pd.DataFrame({"date": [pd.Timestamp(2026, 11, 27)], "close": [1.0]})


def test_a_live_source_is_asked_for_recent_bars() -> None:
    yahoo = StandInYahoo()
    assert newest_bar_date(yahoo, "AAPL") is None  # live: counted from the last session
    check_symbol_available(yahoo, "aapl", today=date(2026, 11, 30))
    assert yahoo.asked == [("AAPL", date(2026, 11, 16), None)]
    with pytest.raises(SymbolUnavailableError, match="unknown symbol"):
        check_symbol_available(yahoo, "NOPE", today=date(2026, 11, 30))
    with pytest.raises(SymbolUnavailableError, match="no recent bars"):
        check_symbol_available(yahoo, "GONE", today=date(2026, 11, 30))
    # A transient failure is the caller's to judge, not a refusal.
    with pytest.raises(SourceTimeoutError):
        check_symbol_available(yahoo, "SLOW", today=date(2026, 11, 30))
