"""The bars contract as ``conform_bars`` and ``bars_from_fields`` produce it: exactly the bar
columns in order, naive ``datetime64[ns]`` dates at midnight, ``float64`` values, a fresh
``RangeIndex``, whatever the input's dtypes, order of columns or index."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pytest

from forecasting.bars import BAR_COLUMNS, bars_from_fields, conform_bars, empty_bars

CONTRACT = {
    "date": np.dtype("datetime64[ns]"),
    **{column: np.dtype("float64") for column in BAR_COLUMNS[1:]},
}


def _dtypes(frame: pd.DataFrame) -> dict[str, np.dtype[np.generic]]:
    return {str(column): dtype for column, dtype in frame.dtypes.items()}


def test_any_input_becomes_the_contract() -> None:
    raw = pd.DataFrame(
        {
            "extra": ["dropped", "too"],
            "volume": np.array([100, 200], dtype="int64"),
            "close": ["10.5", "not a number"],
            "date": ["2024-01-03 15:30", "2024-01-02 09:00"],
            "open": np.array([10.0, 11.0], dtype="float32"),
            "high": [11.0, 12.0],
            "low": [9.0, 10.0],
        },
        index=[7, 3],
    )

    bars = conform_bars(raw)

    assert list(bars.columns) == list(BAR_COLUMNS)
    assert _dtypes(bars) == CONTRACT
    assert isinstance(bars.index, pd.RangeIndex) and list(bars.index) == [0, 1]
    # Rows keep their order (reordering is the validator's job); times drop to midnight.
    assert list(bars["date"]) == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-02")]
    assert bars["close"].iloc[0] == 10.5 and np.isnan(bars["close"].iloc[1])
    assert bars["adj_close"].isna().all()  # missing: NaN
    assert list(bars["volume"]) == [100.0, 200.0]
    assert list(bars["open"]) == [10.0, 11.0]


def test_a_missing_required_column_is_named() -> None:
    with pytest.raises(KeyError, match="'open'"):
        conform_bars(pd.DataFrame({"date": ["2024-01-02"]}))


def test_an_empty_frame_has_the_contract_too() -> None:
    assert _dtypes(empty_bars()) == CONTRACT and empty_bars().empty


@dataclass(frozen=True)
class _Bar:
    date: date
    open: float
    high: float
    low: float
    close: float
    adj_close: float | None
    volume: float


def test_bars_from_fields_builds_what_conform_bars_would() -> None:
    bars = [
        _Bar(date(2024, 1, 2), 10.0, 11.0, 9.0, 10.5, None, 1000.0),
        _Bar(date(2024, 1, 3), 10.5, 12.0, 10.0, 11.5, 11.4, 2000),
    ]

    built = bars_from_fields(bars)

    expected = conform_bars(
        pd.DataFrame(
            {
                "date": [bar.date for bar in bars],
                "open": [bar.open for bar in bars],
                "high": [bar.high for bar in bars],
                "low": [bar.low for bar in bars],
                "close": [bar.close for bar in bars],
                "adj_close": [bar.adj_close for bar in bars],
                "volume": [bar.volume for bar in bars],
            }
        )
    )
    pd.testing.assert_frame_equal(built, expected, check_exact=True)
    assert _dtypes(built) == CONTRACT
    assert np.isnan(built["adj_close"].iloc[0]) and built["adj_close"].iloc[1] == 11.4
    pd.testing.assert_frame_equal(bars_from_fields([]), empty_bars(), check_exact=True)
