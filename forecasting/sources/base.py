"""The one interface every price source implements, and the finishing steps they all share."""

from __future__ import annotations

from datetime import date
from typing import Protocol, runtime_checkable

import pandas as pd

from forecasting.errors import PortableError
from forecasting.sources.errors import NoDataError


class InvalidDateRangeError(PortableError, ValueError):
    """``start`` is after ``end``: a caller bug, not a data problem, so it is not a SourceError."""

    def __init__(self, start: date, end: date) -> None:
        super().__init__(f"start {start.isoformat()} is after end {end.isoformat()}")
        self.start = start
        self.end = end


@runtime_checkable
class PriceSource(Protocol):
    """Daily bars for one symbol at a time.

    ``fetch`` normalises ``symbol`` with :func:`forecasting.symbols.normalize_symbol`, and returns a
    bars frame (:mod:`forecasting.bars`) with split/dividend-adjusted prices, validated by
    :func:`forecasting.validation.clean_bars`, ascending, limited to ``start <= date <= end`` (both
    inclusive, either open). Failures are :class:`~forecasting.sources.errors.SourceError`
    subclasses, or :class:`~forecasting.validation.InvalidBarsError` for bad rows.
    """

    name: str

    def fetch(
        self,
        symbol: str,
        start: date | None = None,
        end: date | None = None,
        *,
        drop_bad: bool = False,
    ) -> pd.DataFrame: ...


def reads_locally(source: PriceSource) -> bool:
    """Whether ``source`` reads files on this machine, so that a fetch is CPU work (parsing and
    validating) rather than a wait on a network. A source says so with a true ``reads_locally``
    attribute; one that does not is taken to wait on a network, whose fetches may overlap."""
    return getattr(source, "reads_locally", False) is True


def check_range(start: date | None, end: date | None) -> None:
    """Refuse an inverted range before any I/O is done for it."""
    if start is not None and end is not None and start > end:
        raise InvalidDateRangeError(start, end)


def select_range(
    bars: pd.DataFrame,
    *,
    symbol: str,
    source: str,
    start: date | None,
    end: date | None,
) -> pd.DataFrame:
    """The rows of validated ``bars`` with ``start <= date <= end``; none is a :class:`NoDataError`.

    Sources validate what they read *before* cutting it, so the row numbers in a validation report
    are the rows the source delivered (for a CSV file, data line ``n`` is row ``n - 1``).
    """
    mask = pd.Series(True, index=bars.index)
    if start is not None:
        mask &= bars["date"] >= pd.Timestamp(start)
    if end is not None:
        mask &= bars["date"] <= pd.Timestamp(end)
    selected = bars.loc[mask].reset_index(drop=True)
    if selected.empty:
        raise NoDataError(symbol, source=source, start=start, end=end)
    return selected
