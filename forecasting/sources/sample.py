"""The bundled offline sample (``sample``): real daily prices shipped inside the package.

The files in ``forecasting/sample_data`` (AAPL, GOOG, INTC, SPY; origin and licence in its
``ATTRIBUTION.md``) go through the CSV loader, so they are validated and adjusted like any
``csv:DIR`` source. Their ``close`` is Yahoo's raw close and ``adj_close`` its split-and-dividend
adjusted close; open, high, low and close are multiplied by ``adj_close / close`` on load, so a split
(AAPL's 7:1 in June 2014) or a dividend never shows up as a price crash the model would learn from.
SPY's file has no ``adj_close``; its prices are used as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from forecasting.sources.csv_directory import CsvSource

#: Where the bundled files live. A plain path, not ``importlib.resources``: the CSV loader lists a
#: real directory, and setuptools installs package data as ordinary files.
SAMPLE_DIRECTORY: Final = Path(__file__).resolve().parent.parent / "sample_data"


class SampleSource(CsvSource):
    """Daily bars from the bundled sample; works without any network or configuration."""

    def __init__(self) -> None:
        super().__init__(SAMPLE_DIRECTORY, name="sample")
