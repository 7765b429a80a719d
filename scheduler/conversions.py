"""Between ``forecasting``'s bars frames (pandas) and ``db``'s ``BarRecord`` values (no pandas in
``db``), column by column: building a frame row by row (``dataclasses.asdict`` per record) costs
more than the forecast it feeds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from db.repositories import BarRecord
from forecasting.bars import conform_bars


def frame_to_records(frame: pd.DataFrame) -> list[BarRecord]:
    """A validated bars frame as the repository's records."""
    dates = [stamp.date() for stamp in pd.to_datetime(frame["date"])]
    columns = {
        name: frame[name].to_numpy(dtype="float64")
        for name in ("open", "high", "low", "close", "adj_close", "volume")
    }
    adj_close = columns["adj_close"]
    return [
        BarRecord(
            date=day,
            open=float(columns["open"][i]),
            high=float(columns["high"][i]),
            low=float(columns["low"][i]),
            close=float(columns["close"][i]),
            adj_close=None if math.isnan(adj_close[i]) else float(adj_close[i]),
            volume=float(columns["volume"][i]),
        )
        for i, day in enumerate(dates)
    ]


def records_to_bars(records: Sequence[BarRecord]) -> pd.DataFrame:
    """Stored bars as a bars frame (``adj_close`` NaN where none was stored)."""
    return conform_bars(
        pd.DataFrame(
            {
                "date": [r.date for r in records],
                "open": [r.open for r in records],
                "high": [r.high for r in records],
                "low": [r.low for r in records],
                "close": [r.close for r in records],
                "adj_close": [math.nan if r.adj_close is None else r.adj_close for r in records],
                "volume": [r.volume for r in records],
            }
        )
    )
