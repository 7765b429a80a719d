"""The one data contract of the forecasting core: a frame of daily bars.

A bars frame is a ``pandas.DataFrame`` with exactly the columns of :data:`BAR_COLUMNS`, one row per
trading day, ``date`` as naive ``datetime64[ns]`` at midnight, prices as ``float64`` and ``volume``
as ``float64``. ``adj_close`` may be NaN where the source has none; every other value is required.
Sources produce it, the validator checks it, the database stores it and the models consume it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import IO, Any, Final, Protocol

import numpy as np
import pandas as pd

BAR_COLUMNS: Final = ("date", "open", "high", "low", "close", "adj_close", "volume")
PRICE_COLUMNS: Final = ("open", "high", "low", "close")


def empty_bars() -> pd.DataFrame:
    """An empty frame with the bar columns and dtypes."""
    return conform_bars(pd.DataFrame({column: [] for column in BAR_COLUMNS}))


def conform_bars(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with exactly the bar columns, in order, with the contract's dtypes.

    Missing ``adj_close`` becomes NaN; any other missing column raises ``KeyError`` naming it.
    Rows are not reordered or checked here: that is the validator's job.
    """
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for column in BAR_COLUMNS:
        if column in frame.columns:
            values = frame[column].to_numpy()
        elif column == "adj_close":
            values = np.full(len(frame), np.nan)
        else:
            raise KeyError(f"bars need a {column!r} column")
        out[column] = values
    out["date"] = pd.to_datetime(out["date"]).dt.normalize().astype("datetime64[ns]")
    for column in BAR_COLUMNS[1:]:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    return out


class BarFields(Protocol):
    """One bar as other packages hold it (``db``'s ``BarRecord``): attributes, no pandas."""

    @property
    def date(self) -> date: ...
    @property
    def open(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def close(self) -> float: ...
    @property
    def adj_close(self) -> float | None: ...
    @property
    def volume(self) -> float: ...


def bars_from_fields(bars: Sequence[BarFields]) -> pd.DataFrame:
    """A bars frame from bar objects, built column by column (a frame built row by row costs
    more than the forecast it feeds); a missing ``adj_close`` becomes NaN."""
    return conform_bars(
        pd.DataFrame(
            {
                "date": [bar.date for bar in bars],
                "open": [bar.open for bar in bars],
                "high": [bar.high for bar in bars],
                "low": [bar.low for bar in bars],
                "close": [bar.close for bar in bars],
                "adj_close": [math.nan if bar.adj_close is None else bar.adj_close for bar in bars],
                "volume": [bar.volume for bar in bars],
            }
        )
    )


def bar_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The bars of ``frame`` as plain rows (python ``date`` and ``float``; NaN ``adj_close`` as
    ``None``), read column by column, ready for ``BarRecord(**row)``."""
    days = [stamp.date() for stamp in pd.to_datetime(frame["date"])]
    columns = {name: frame[name].to_numpy(dtype="float64").tolist() for name in BAR_COLUMNS[1:]}
    return [
        {
            "date": day,
            "open": columns["open"][i],
            "high": columns["high"][i],
            "low": columns["low"][i],
            "close": columns["close"][i],
            "adj_close": None if math.isnan(columns["adj_close"][i]) else columns["adj_close"][i],
            "volume": columns["volume"][i],
        }
        for i, day in enumerate(days)
    ]


def read_bars_csv(source: str | IO[str]) -> pd.DataFrame:
    """Read a CSV in the layout of ``shared/data``: ``date,open,high,low,close,adj_close,volume``."""
    return conform_bars(pd.read_csv(source))


def last_date(bars: pd.DataFrame) -> date | None:
    """The date of the last bar, or ``None`` for an empty frame."""
    if bars.empty:
        return None
    return pd.Timestamp(bars["date"].iloc[-1]).date()
