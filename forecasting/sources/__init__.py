"""Data sources behind one interface: Yahoo Finance (yfinance), a CSV directory, the bundled sample.

Importing this package is cheap: :class:`YFinanceSource` (and with it yfinance and curl_cffi) is
loaded only when first used, through :func:`make_source` or by accessing the name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forecasting.sources.base import InvalidDateRangeError, PriceSource, reads_locally
from forecasting.sources.batch import (
    BatchFetch,
    BatchPolicy,
    BatchPriceSource,
    DuplicateRequestError,
    FetchedBars,
    FetchRequest,
    ListedPriceSource,
    fetch_batch,
    fetch_with_listing,
)
from forecasting.sources.csv_directory import CsvSource, SourceDirectoryError, adjust_by_adj_close
from forecasting.sources.errors import (
    CorruptSourceDataError,
    NoDataError,
    RateLimitedError,
    SourceError,
    SourceTimeoutError,
    SourceUnavailableError,
    UnknownSymbolError,
)
from forecasting.sources.factory import make_source
from forecasting.sources.sample import SAMPLE_DIRECTORY, SampleSource
from forecasting.sources.spec import SOURCE_KINDS, parse_source_spec

if TYPE_CHECKING:
    from forecasting.sources.yahoo import YahooSession, YFinanceSource

__all__ = [
    "SAMPLE_DIRECTORY",
    "SOURCE_KINDS",
    "BatchFetch",
    "BatchPolicy",
    "BatchPriceSource",
    "CorruptSourceDataError",
    "CsvSource",
    "DuplicateRequestError",
    "FetchRequest",
    "FetchedBars",
    "InvalidDateRangeError",
    "ListedPriceSource",
    "NoDataError",
    "PriceSource",
    "RateLimitedError",
    "SampleSource",
    "SourceDirectoryError",
    "SourceError",
    "SourceTimeoutError",
    "SourceUnavailableError",
    "UnknownSymbolError",
    "YFinanceSource",
    "YahooSession",
    "adjust_by_adj_close",
    "fetch_batch",
    "fetch_with_listing",
    "make_source",
    "parse_source_spec",
    "reads_locally",
]

_LAZY = {"YFinanceSource", "YahooSession"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from forecasting.sources import yahoo

        return getattr(yahoo, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
