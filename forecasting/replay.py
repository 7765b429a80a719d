"""A market replay: a static source (the sample, a CSV directory) played back one session at a time.

The bundled sample ends in 2020, so on it nothing new ever arrives and no forecast ever matures.
A replay puts a simulated market clock in front of the source: it starts a number of sessions
before the end of the data and advances one session at a time, and :class:`ReplaySource` reveals
only the bars up to the simulated session, so ingest, forecast, evaluation and retraining see the
market as it was on that day. The sessions are the dates the data has (the union of its files),
so a replay never waits on a day with no bar.

A replay never wraps a live source: Yahoo's newest bar is today's, and there is nothing to replay.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

import pandas as pd

from forecasting.errors import PortableError
from forecasting.sources.availability import StaticPriceSource
from forecasting.sources.base import check_range, select_range
from forecasting.sources.csv_directory import CsvSource
from forecasting.sources.errors import NoDataError, UnknownSymbolError
from forecasting.symbols import normalize_symbol

#: How long after a simulated session's date its "now" is: past any exchange's close that day.
_AFTER_THE_CLOSE: Final = timedelta(hours=23, minutes=59)


class NoReplayDataError(PortableError, ValueError):
    """The source has too few sessions to replay."""

    def __init__(self, source: str, sessions: int) -> None:
        super().__init__(
            f"{source} has {sessions} session(s) with bars; a replay needs at least two"
        )
        self.source = source


@dataclass(frozen=True, kw_only=True)
class ReplayPosition:
    """Where a replay is: the simulated session, and how far through its sessions."""

    session: date
    index: int
    total: int
    first: date
    last: date

    @property
    def finished(self) -> bool:
        return self.index >= self.total - 1


class ReplayClock:
    """The simulated market clock: the current session, advanced one session at a time.

    Thread-safe: sources read it from worker threads while the replay task advances it.
    """

    def __init__(self, sessions: Sequence[date], *, start: date) -> None:
        ordered = sorted(set(sessions))
        if len(ordered) < 2:
            raise ValueError("a replay needs at least two sessions")
        eligible = [index for index, day in enumerate(ordered) if day <= start]
        self._sessions = ordered
        self._index = eligible[-1] if eligible else 0
        self._lock = threading.Lock()

    @property
    def position(self) -> ReplayPosition:
        with self._lock:
            index = self._index
        return ReplayPosition(
            session=self._sessions[index],
            index=index,
            total=len(self._sessions),
            first=self._sessions[0],
            last=self._sessions[-1],
        )

    def today(self) -> date:
        """The simulated session: its bar is the newest the source reveals."""
        with self._lock:
            return self._sessions[self._index]

    def now(self) -> datetime:
        """The simulated "now" (aware UTC): late on the simulated session's day, after its close,
        so "the last closed session" is the simulated session."""
        day = self.today()
        return datetime(day.year, day.month, day.day, tzinfo=UTC) + _AFTER_THE_CLOSE

    def advance(self) -> ReplayPosition | None:
        """Move to the next session; ``None`` (and no move) when the data has ended."""
        with self._lock:
            if self._index >= len(self._sessions) - 1:
                return None
            self._index += 1
        return self.position


def replay_sessions(source: StaticPriceSource) -> list[date]:
    """Every date any of the source's symbols has a bar on, ascending. Blocking (reads files)."""
    days: set[date] = set()
    for symbol in source.symbols():
        try:
            bars = source.fetch(symbol, drop_bad=True)  # type: ignore[attr-defined]
        except (UnknownSymbolError, NoDataError):
            continue
        days.update(stamp.date() for stamp in pd.to_datetime(bars["date"]))
    return sorted(days)


def replay_clock(
    source: StaticPriceSource, *, sessions_before_end: int, resume_at: date | None = None
) -> ReplayClock:
    """A clock over ``source``'s sessions, ``sessions_before_end`` sessions before its last one, or
    at ``resume_at`` (where an earlier run of the replay stopped) when that is within the data."""
    days = replay_sessions(source)
    if len(days) < 2:
        raise NoReplayDataError(source.name, len(days))
    start = days[max(0, len(days) - 1 - sessions_before_end)]
    if resume_at is not None and days[0] <= resume_at <= days[-1]:
        start = resume_at
    return ReplayClock(days, start=start)


class ReplaySource:
    """A static source seen through a :class:`ReplayClock`: no bar after the simulated session."""

    #: It reads its base's files (see :func:`forecasting.sources.reads_locally`).
    reads_locally: Final = True

    def __init__(self, base: CsvSource, clock: ReplayClock) -> None:
        self.base = base
        self.clock = clock
        self.name = base.name

    def fetch(
        self,
        symbol: str,
        start: date | None = None,
        end: date | None = None,
        *,
        drop_bad: bool = False,
    ) -> pd.DataFrame:
        check_range(start, end)
        today = self.clock.today()
        cut = today if end is None else min(end, today)
        wanted = normalize_symbol(symbol)
        if start is not None and start > cut:
            raise NoDataError(wanted, source=self.name, start=start, end=end)
        bars = self.base.fetch(wanted, None, cut, drop_bad=drop_bad)
        return select_range(bars, symbol=wanted, source=self.name, start=start, end=cut)

    def symbols(self) -> list[str]:
        return self.base.symbols()

    def newest_date(self, symbol: str) -> date:
        """The newest bar on or before the simulated session."""
        bars = self.fetch(symbol, drop_bad=True)
        newest: date = bars["date"].iloc[-1].date()
        return newest
