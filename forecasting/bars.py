"""The one data contract of the forecasting core: a frame of daily bars.

A bars frame is a ``pandas.DataFrame`` with exactly the columns of :data:`BAR_COLUMNS`, one row per
trading day, ``date`` as naive ``datetime64[ns]`` at midnight, prices as ``float64`` and ``volume``
as ``float64``. ``adj_close`` may be NaN where the source has none; every other value is required.
Sources produce it, the validator checks it, the database stores it and the models consume it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
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
    Rows are not reordered or checked here: that is the validator's job. The frame is built once
    from its columns, and a column already ``float64`` is taken as it is: assigning the columns
    one by one and converting each again cost 4 ms a call, three times the ``read_csv`` it
    follows, on every file of a refresh and every forecast.
    """
    size = len(frame)
    columns: dict[str, Any] = {}
    for column in BAR_COLUMNS:
        if column in frame.columns:
            columns[column] = frame[column].to_numpy()
        elif column == "adj_close":
            columns[column] = np.full(size, np.nan)
        else:
            raise KeyError(f"bars need a {column!r} column")
    dates = pd.to_datetime(pd.Series(columns["date"], dtype=_dtype_of(columns["date"])))
    columns["date"] = dates.dt.normalize().astype("datetime64[ns]").to_numpy()
    for column in BAR_COLUMNS[1:]:
        values = columns[column]
        if values.dtype != np.float64:
            numbers = pd.to_numeric(pd.Series(values), errors="coerce")
            columns[column] = numbers.astype("float64").to_numpy()
    return pd.DataFrame(columns, index=pd.RangeIndex(size))


def _dtype_of(values: np.ndarray[Any, Any]) -> Any:
    """An empty column keeps no dtype worth keeping: as ``object`` it converts like the rest."""
    return values.dtype if len(values) else object


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
    """A bars frame from bar objects, built column by column into arrays of the contract's
    dtypes (a frame built row by row, or from lists of Python objects and then converted, costs
    more than the forecast it feeds); a missing ``adj_close`` becomes NaN."""
    size = len(bars)

    def floats(values: Iterable[float]) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.fromiter(values, np.float64, size)

    days = np.array([bar.date for bar in bars], dtype="datetime64[D]")
    return pd.DataFrame(
        {
            "date": days.astype("datetime64[ns]"),
            "open": floats(bar.open for bar in bars),
            "high": floats(bar.high for bar in bars),
            "low": floats(bar.low for bar in bars),
            "close": floats(bar.close for bar in bars),
            "adj_close": floats(
                math.nan if bar.adj_close is None else bar.adj_close for bar in bars
            ),
            "volume": floats(bar.volume for bar in bars),
        },
        index=pd.RangeIndex(size),
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
