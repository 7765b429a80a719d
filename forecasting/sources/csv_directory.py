"""A price source reading one ``SYMBOL.csv`` per symbol from a directory (``csv:DIR``).

The file layout is ``shared/data``'s: ``date,open,high,low,close,adj_close,volume``. A symbol never
becomes part of a path: the directory is listed, file names that are valid upper-case symbols are
mapped to their files, and the normalised symbol is looked up in that map.

Prices are adjusted on load. Where a row has an ``adj_close``, the file is taken to be a classic
Yahoo export (raw ``close`` plus the split-and-dividend adjusted close), and open, high, low and
close are multiplied by ``adj_close / close``, so a split or a dividend never looks like a crash.
Where ``adj_close`` is empty the prices are taken as already adjusted (yfinance ``auto_adjust``).
Volume is left as the file has it.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.bars import PRICE_COLUMNS, read_bars_csv
from forecasting.sources.base import check_range, select_range
from forecasting.sources.errors import (
    CorruptSourceDataError,
    SourceUnavailableError,
    UnknownSymbolError,
)
from forecasting.symbols import InvalidSymbolError, normalize_symbol
from forecasting.validation import clean_bars


class SourceDirectoryError(ValueError):
    """A CSV source was pointed at something that is not a directory."""

    def __init__(self, directory: Path) -> None:
        super().__init__(f"csv source directory {str(directory)!r} does not exist")
        self.directory = directory


def adjust_by_adj_close(bars: pd.DataFrame) -> pd.DataFrame:
    """Scale open/high/low/close by ``adj_close / close`` on rows that have an ``adj_close``.

    One factor per row keeps each bar's shape (the low stays the lowest price), so a validated bar
    stays valid. Rows without ``adj_close`` are returned unchanged. ``adj_close`` itself is kept.
    """
    adj_close = bars["adj_close"].to_numpy(dtype="float64")
    close = bars["close"].to_numpy(dtype="float64")
    factor = np.where(np.isnan(adj_close), 1.0, adj_close / close)
    adjusted = bars.copy()
    for column in PRICE_COLUMNS:
        adjusted[column] = bars[column].to_numpy(dtype="float64") * factor
    return adjusted


class CsvSource:
    """Daily bars from a directory of ``SYMBOL.csv`` files."""

    def __init__(self, directory: str | Path, *, name: str | None = None) -> None:
        path = Path(directory)
        if not path.is_dir():
            raise SourceDirectoryError(path)
        self.directory = path
        self.name = name or f"csv:{path}"

    def available_symbols(self) -> list[str]:
        """The symbols this directory has a file for, sorted."""
        return sorted(self._symbol_files())

    def fetch(
        self,
        symbol: str,
        start: date | None = None,
        end: date | None = None,
        *,
        drop_bad: bool = False,
    ) -> pd.DataFrame:
        """Bars for ``symbol`` (see :class:`~forecasting.sources.base.PriceSource`).

        The whole file is validated, not just the requested range: a broken file should be fixed,
        and its report then names the file's own rows.
        """
        check_range(start, end)
        wanted = normalize_symbol(symbol)
        path = self._symbol_files().get(wanted)
        if path is None:
            raise UnknownSymbolError(wanted, source=self.name)
        raw = self._read(wanted, path)
        bars = adjust_by_adj_close(clean_bars(raw, drop_bad=drop_bad))
        return select_range(bars, symbol=wanted, source=self.name, start=start, end=end)

    def _symbol_files(self) -> dict[str, Path]:
        # Listed on every call: files may be added while the service runs, and listing is cheap
        # next to parsing a file.
        try:
            entries = list(os.scandir(self.directory))
        except OSError as exc:
            raise SourceUnavailableError(
                source=self.name, detail=f"cannot list the directory ({exc.strerror})"
            ) from exc
        files: dict[str, Path] = {}
        for entry in entries:
            stem, dot, extension = entry.name.rpartition(".")
            if not dot or extension != "csv":
                continue
            try:
                symbol = normalize_symbol(stem)
            except InvalidSymbolError:
                continue
            # Exact names only, so two files can never claim one symbol (``aapl.csv``, ``AAPL.csv``).
            if symbol == stem and entry.is_file():
                files[symbol] = Path(entry.path)
        return files

    def _read(self, symbol: str, path: Path) -> pd.DataFrame:
        try:
            return read_bars_csv(str(path))
        except OSError as exc:
            raise SourceUnavailableError(
                source=self.name, detail=f"cannot read {path.name} ({exc.strerror})"
            ) from exc
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise CorruptSourceDataError(symbol, source=self.name, detail=str(exc)) from exc
        except KeyError as exc:
            # conform_bars names the missing column.
            raise CorruptSourceDataError(symbol, source=self.name, detail=str(exc.args[0])) from exc
        except ValueError as exc:
            # An unparseable date.
            raise CorruptSourceDataError(symbol, source=self.name, detail=str(exc)) from exc
