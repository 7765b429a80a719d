"""Builds the configured price source from its spec (``yfinance``, ``csv:DIR``, ``sample``)."""

from __future__ import annotations

from forecasting.sources.base import PriceSource
from forecasting.sources.csv_directory import CsvSource
from forecasting.sources.sample import SampleSource
from forecasting.sources.spec import parse_source_spec


def make_source(spec: str, *, timeout: float = 10.0) -> PriceSource:
    """The source ``spec`` names, checked by :func:`parse_source_spec` first (``ValueError``).

    ``timeout`` applies to network sources only. yfinance is imported here, on demand, so a process
    configured for CSV files or the sample never loads it.
    """
    normalised = parse_source_spec(spec)
    if normalised == "sample":
        return SampleSource()
    if normalised.startswith("csv:"):
        return CsvSource(normalised.removeprefix("csv:"))
    from forecasting.sources.yahoo import YFinanceSource

    return YFinanceSource(timeout=timeout)
