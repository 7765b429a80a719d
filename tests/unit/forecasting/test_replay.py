"""The market replay's clock and source: sessions from the data, nothing revealed past the clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from forecasting.calendar import last_closed_session
from forecasting.replay import (
    NoReplayDataError,
    ReplayClock,
    ReplaySource,
    replay_clock,
    replay_sessions,
)
from forecasting.sources import CsvSource, NoDataError, SampleSource
from forecasting.sources.availability import StaticPriceSource, newest_bar_date

HEADER = "date,open,high,low,close,adj_close,volume\n"


def _write(directory: Path, symbol: str, days: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{day},10,11,9,10.5,,100\n" for day in days)
    (directory / f"{symbol}.csv").write_text(HEADER + rows, encoding="utf-8")


@pytest.fixture
def source(tmp_path: Path) -> CsvSource:
    _write(tmp_path, "AAA", ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"])
    _write(tmp_path, "BBB", ["2020-01-03", "2020-01-06", "2020-01-08"])
    return CsvSource(tmp_path)


def test_sessions_are_the_union_of_the_files_dates(source: CsvSource) -> None:
    assert replay_sessions(source) == [
        date(2020, 1, 2),
        date(2020, 1, 3),
        date(2020, 1, 6),
        date(2020, 1, 7),
        date(2020, 1, 8),
    ]


def test_the_clock_starts_sessions_before_the_end_and_stops_there(source: CsvSource) -> None:
    clock = replay_clock(source, sessions_before_end=2)
    assert clock.today() == date(2020, 1, 6)
    position = clock.position
    assert (position.index, position.total, position.finished) == (2, 5, False)
    assert clock.advance() is not None
    last = clock.advance()
    assert last is not None and last.session == date(2020, 1, 8) and last.finished
    assert clock.advance() is None  # the data has ended: the clock stays
    assert clock.today() == date(2020, 1, 8)


def test_too_many_sessions_start_at_the_first_and_a_resume_point_wins(source: CsvSource) -> None:
    assert replay_clock(source, sessions_before_end=100).today() == date(2020, 1, 2)
    resumed = replay_clock(source, sessions_before_end=100, resume_at=date(2020, 1, 7))
    assert resumed.today() == date(2020, 1, 7)
    # A resume point outside the data (another source's replay) is ignored.
    other = replay_clock(source, sessions_before_end=1, resume_at=date(2021, 5, 5))
    assert other.today() == date(2020, 1, 7)


def test_the_simulated_now_is_after_the_sessions_close() -> None:
    clock = ReplayClock([date(2020, 7, 13), date(2020, 7, 14)], start=date(2020, 7, 14))
    now = clock.now()
    assert now.tzinfo is UTC
    assert now > datetime(2020, 7, 14, 20, 0, tzinfo=UTC)  # the NYSE close, 16:00 New York
    assert last_closed_session(now) == date(2020, 7, 14)


def test_the_source_reveals_nothing_after_the_simulated_session(source: CsvSource) -> None:
    clock = replay_clock(source, sessions_before_end=3)  # 2020-01-03
    replay = ReplaySource(source, clock)
    assert isinstance(replay, StaticPriceSource)
    assert list(replay.fetch("AAA")["date"].dt.date) == [date(2020, 1, 2), date(2020, 1, 3)]
    assert list(replay.fetch("AAA", end=date(2030, 1, 1))["date"].dt.date)[-1] == date(2020, 1, 3)
    with pytest.raises(NoDataError):
        replay.fetch("AAA", start=date(2020, 1, 6))  # tomorrow's bars do not exist yet
    assert newest_bar_date(replay, "BBB") == date(2020, 1, 3)
    clock.advance()
    assert newest_bar_date(replay, "AAA") == date(2020, 1, 6)
    assert replay.symbols() == ["AAA", "BBB"]


def test_a_source_with_one_session_cannot_be_replayed(tmp_path: Path) -> None:
    _write(tmp_path, "AAA", ["2020-01-02"])
    with pytest.raises(NoReplayDataError, match="at least two"):
        replay_clock(CsvSource(tmp_path), sessions_before_end=5)


def test_the_bundled_sample_replays_to_its_last_bar() -> None:
    clock = replay_clock(SampleSource(), sessions_before_end=60)
    assert clock.position.last == date(2020, 8, 28)
    assert clock.position.total - 1 - clock.position.index == 60
