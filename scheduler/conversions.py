"""Between ``forecasting``'s bars frames (pandas) and ``db``'s ``BarRecord`` values (no pandas in
``db``); the column-wise work is ``forecasting.bars``'s, shared with the API."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from db.repositories import BarRecord
from forecasting.bars import bar_rows, bars_from_fields


def frame_to_records(frame: pd.DataFrame) -> list[BarRecord]:
    """A validated bars frame as the repository's records."""
    return [BarRecord(**row) for row in bar_rows(frame)]


def records_to_bars(records: Sequence[BarRecord]) -> pd.DataFrame:
    """Stored bars as a bars frame (``adj_close`` NaN where none was stored)."""
    return bars_from_fields(records)
