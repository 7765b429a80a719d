"""The bundled sample: real prices, adjusted on load, on NYSE sessions, shipped with attribution."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from forecasting.bars import read_bars_csv
from forecasting.calendar import is_trading_day
from forecasting.sources import SAMPLE_DIRECTORY, SampleSource, make_source
from forecasting.validation import validate_bars

SYMBOLS = ["AAPL", "GOOG", "INTC", "SPY"]


def test_sample_lists_its_symbols_and_is_built_by_make_source() -> None:
    source = make_source("sample")

    assert isinstance(source, SampleSource)
    assert source.name == "sample"
    assert sorted(path.stem for path in SAMPLE_DIRECTORY.glob("*.csv")) == SYMBOLS


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_prices_are_adjusted_by_adj_close(symbol: str) -> None:
    raw = read_bars_csv(str(SAMPLE_DIRECTORY / f"{symbol}.csv"))

    bars = SampleSource().fetch(symbol)

    assert len(bars) == len(raw)
    assert validate_bars(bars).ok
    has_adj = raw["adj_close"].notna().to_numpy()
    factor = np.where(has_adj, raw["adj_close"] / raw["close"], 1.0)
    for column in ("open", "high", "low", "close"):
        np.testing.assert_allclose(bars[column], raw[column] * factor, rtol=1e-12)
    # SPY's file has no adj_close: its prices are used as written.
    assert has_adj.all() == (symbol != "SPY")


def test_aapl_june_2014_split_is_not_a_crash() -> None:
    bars = SampleSource().fetch("AAPL", date(2014, 6, 2), date(2014, 6, 13))

    moves = np.abs(np.diff(np.log(bars["close"].to_numpy())))
    assert moves.max() < 0.03
    assert bars["close"].min() > 80


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_every_bar_is_an_nyse_session_and_no_session_is_missing(symbol: str) -> None:
    bars = SampleSource().fetch(symbol)
    days = [stamp.date() for stamp in bars["date"]]

    calendar_days = (days[0] + timedelta(days=n) for n in range((days[-1] - days[0]).days + 1))
    assert days == [day for day in calendar_days if is_trading_day(day)]


def test_intc_reaches_back_to_1995() -> None:
    bars = SampleSource().fetch("INTC", end=date(1995, 1, 31))

    assert bars["date"].iloc[0].date() == date(1995, 1, 3)
    # 22 weekdays from Jan 2 to Jan 31, less New Year's Day observed on Monday Jan 2 (the NYSE
    # only closed for Martin Luther King Jr. Day from 1998).
    assert len(bars) == 21


def test_attribution_names_every_file_and_its_licence() -> None:
    text = (SAMPLE_DIRECTORY / "ATTRIBUTION.md").read_text()

    for symbol in SYMBOLS:
        assert f"`{symbol}.csv`" in text
    assert "matplotlib/mplfinance" in text
    assert "Matplotlib-style licence" in text
    assert "twopirllc/pandas-ta" in text
    assert "MIT licence" in text
    assert sorted(path.stem for path in SAMPLE_DIRECTORY.glob("*.csv")) == SYMBOLS
