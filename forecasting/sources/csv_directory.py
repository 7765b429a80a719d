"""A price source reading one ``SYMBOL.csv`` per symbol from a directory (``csv:DIR``).

The file layout is ``shared/data``'s: ``date,open,high,low,close,adj_close,volume``. A symbol never
becomes part of a path: the directory is listed, file names that are valid upper-case symbols
(``AAPL.csv``, ``PETR4.SA.csv``, ``^BVSP.csv``) are mapped to their files, and the normalised symbol
is looked up in that map.

Neither the listing nor a file's validation is redone on every fetch. The listing is kept until
the directory's modification time changes (and redone once before a symbol is called unknown, in
case a file arrived within the same clock tick); a file's validated, adjusted bars are kept, for
the most recently used files, until its size, modification time or inode changes.

Prices are adjusted on load. Where a row has an ``adj_close``, the file is taken to be a classic
Yahoo export (raw ``close`` plus the split-and-dividend adjusted close), and open, high, low and
close are multiplied by ``adj_close / close``, so a split or a dividend never looks like a crash.
Where ``adj_close`` is empty the prices are taken as already adjusted (yfinance ``auto_adjust``).
Volume is left as the file has it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from forecasting.bars import PRICE_COLUMNS, read_bars_csv
from forecasting.errors import PortableError
from forecasting.sources.base import check_range, select_range
from forecasting.sources.batch import BatchFetch, FetchRequest, fetch_each
from forecasting.sources.errors import (
    CorruptSourceDataError,
    NoDataError,
    SourceUnavailableError,
    UnknownSymbolError,
)
from forecasting.symbols import InvalidSymbolError, normalize_symbol
from forecasting.validation import clean_bars


class SourceDirectoryError(PortableError, ValueError):
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


#: What identifies a version of a file or directory: modification time (ns), size, inode.
_Signature = tuple[int, int, int]


@dataclass(frozen=True, kw_only=True)
class _Listing:
    signature: _Signature
    files: dict[str, Path]


@dataclass(frozen=True, kw_only=True)
class _LoadedFile:
    signature: _Signature
    bars: pd.DataFrame
    #: Whether every row was valid: then the bars serve a strict read as well as a lenient one
    #: (a backfill asks for the newest valid bar leniently, then fetches strictly).
    clean: bool


class CsvSource:
    """Daily bars from a directory of ``SYMBOL.csv`` files.

    ``cache_size`` is how many files' validated bars are kept (a 20-year file is about 0.3 MB):
    enough for the refresh batches in flight on a node (four batches of fifty by default).
    """

    #: A fetch parses and validates files on this disk: CPU work, which a node runs one batch at
    #: a time (:func:`~forecasting.sources.base.reads_locally`).
    reads_locally: Final = True

    def __init__(
        self, directory: str | Path, *, name: str | None = None, cache_size: int = 256
    ) -> None:
        path = Path(directory)
        if not path.is_dir():
            raise SourceDirectoryError(path)
        self.directory = path
        self.name = name or f"csv:{path}"
        self._cache_size = max(0, cache_size)
        self._lock = threading.Lock()
        self._listing: _Listing | None = None
        self._loaded: OrderedDict[str, _LoadedFile] = OrderedDict()

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
        bars = self._bars(wanted, drop_bad=drop_bad)
        return select_range(bars, symbol=wanted, source=self.name, start=start, end=end)

    def fetch_many(self, requests: Sequence[FetchRequest], *, drop_bad: bool = False) -> BatchFetch:
        """Bars for many symbols; a missing or broken file fails its own symbol only."""
        return fetch_each(self, requests, drop_bad=drop_bad)

    def symbols(self) -> list[str]:
        """The symbols of the directory's files, sorted (listing the directory again)."""
        return sorted(self._symbol_files(fresh=True))

    def newest_date(self, symbol: str) -> date:
        """The date of ``symbol``'s newest valid bar (bad rows are left out, as a backfill that
        drops them would); :class:`UnknownSymbolError` when the directory has no file for it."""
        wanted = normalize_symbol(symbol)
        bars = self._bars(wanted, drop_bad=True)
        if bars.empty:
            raise NoDataError(wanted, source=self.name)
        newest: date = bars["date"].iloc[-1].date()
        return newest

    def _bars(self, symbol: str, *, drop_bad: bool) -> pd.DataFrame:
        """The file's validated bars, read once per version of the file: a strict read of a
        file with bad rows raises every time, a lenient one drops them."""
        path, signature = self._locate(symbol)
        with self._lock:
            loaded = self._loaded.get(symbol)
            if loaded is not None and loaded.signature == signature and (drop_bad or loaded.clean):
                self._loaded.move_to_end(symbol)
                return loaded.bars
        raw = self._read(symbol, path)
        cleaned = clean_bars(raw, drop_bad=drop_bad)
        bars = adjust_by_adj_close(cleaned)
        if self._cache_size:
            entry = _LoadedFile(signature=signature, bars=bars, clean=len(cleaned) == len(raw))
            with self._lock:
                self._loaded[symbol] = entry
                self._loaded.move_to_end(symbol)
                while len(self._loaded) > self._cache_size:
                    self._loaded.popitem(last=False)
        return bars

    def _locate(self, symbol: str) -> tuple[Path, _Signature]:
        """The file of ``symbol`` and its signature, listing the directory again only when the
        cached listing may be stale (it changed, or does not have the symbol, or lost its file)."""
        for fresh in (False, True):
            path = self._symbol_files(fresh=fresh).get(symbol)
            if path is None:
                continue
            try:
                return path, _signature(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise SourceUnavailableError(
                    source=self.name, detail=f"cannot read {path.name} ({exc.strerror})"
                ) from exc
        raise UnknownSymbolError(symbol, source=self.name)

    def _symbol_files(self, *, fresh: bool = False) -> dict[str, Path]:
        try:
            signature = _signature(self.directory)
        except OSError as exc:
            raise self._unlistable(exc) from exc
        with self._lock:
            cached = self._listing
        if not fresh and cached is not None and cached.signature == signature:
            return cached.files
        files = self._list()
        with self._lock:
            self._listing = _Listing(signature=signature, files=files)
        return files

    def _list(self) -> dict[str, Path]:
        try:
            entries = list(os.scandir(self.directory))
        except OSError as exc:
            raise self._unlistable(exc) from exc
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

    def _unlistable(self, exc: OSError) -> SourceUnavailableError:
        return SourceUnavailableError(
            source=self.name, detail=f"cannot list the directory ({exc.strerror})"
        )

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


def _signature(path: Path) -> _Signature:
    status = path.stat()
    return (status.st_mtime_ns, status.st_size, status.st_ino)
