"""Trading-calendar answers, checked against real NYSE holidays and early closes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from forecasting import calendar as trading_calendar
from forecasting.calendar import (
    DateOutsideCalendarError,
    NaiveDatetimeError,
    NotASessionError,
    UnknownExchangeError,
    is_trading_day,
    last_closed_session,
    next_session_close_utc,
    session_close_utc,
    trading_days_after,
)

NEW_YORK = ZoneInfo("America/New_York")


def new_york(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        # A normal Friday: the next session is Monday.
        (date(2024, 2, 2), date(2024, 2, 5)),
        # Friday before Martin Luther King Jr. Day: Tuesday.
        (date(2024, 1, 12), date(2024, 1, 16)),
        # Wednesday before Thanksgiving (Thu 2023-11-23 closed): the half-day Friday.
        (date(2023, 11, 22), date(2023, 11, 24)),
        # Thursday before Good Friday 2024: Monday.
        (date(2024, 3, 28), date(2024, 4, 1)),
        # From a Saturday (not a session itself): Monday.
        (date(2024, 2, 3), date(2024, 2, 5)),
    ],
)
def test_one_step_ahead_is_the_next_session(last: date, expected: date) -> None:
    assert trading_days_after(last, 1) == [expected]


def test_several_steps_skip_weekends_and_holidays() -> None:
    # Independence Day 2024 is a Thursday.
    assert trading_days_after(date(2024, 7, 2), 4) == [
        date(2024, 7, 3),
        date(2024, 7, 5),
        date(2024, 7, 8),
        date(2024, 7, 9),
    ]
    assert trading_days_after(date(2024, 7, 2), 0) == []


def test_is_trading_day() -> None:
    assert is_trading_day(date(2024, 1, 12))
    assert not is_trading_day(date(2024, 1, 13))  # Saturday
    assert not is_trading_day(date(2024, 1, 15))  # MLK day
    assert not is_trading_day(date(2023, 11, 23))  # Thanksgiving
    # Boxing Day trades in New York but not in London.
    assert is_trading_day(date(2024, 12, 26))
    assert not is_trading_day(date(2024, 12, 26), "XLON")


def test_covers_the_bundled_1995_data_and_two_years_ahead() -> None:
    assert is_trading_day(date(1995, 1, 3))
    assert not is_trading_day(date(1995, 1, 2))  # New Year's Day observed
    assert is_trading_day(date(1990, 1, 2))
    ahead = datetime.now(UTC).date() + timedelta(days=2 * 365)
    assert len(trading_days_after(ahead - timedelta(days=30), 10)) == 10


def test_session_close_utc_includes_early_closes_and_dst() -> None:
    # Winter: 16:00 EST is 21:00 UTC. Summer: 16:00 EDT is 20:00 UTC.
    assert session_close_utc(date(2024, 1, 12)) == datetime(2024, 1, 12, 21, 0, tzinfo=UTC)
    assert session_close_utc(date(2024, 7, 1)) == datetime(2024, 7, 1, 20, 0, tzinfo=UTC)
    # The day after Thanksgiving closes at 13:00 New York.
    close = session_close_utc(date(2023, 11, 24))
    assert close == new_york(2023, 11, 24, 13)
    assert close.tzinfo == UTC


def test_session_close_of_a_holiday_is_an_error() -> None:
    with pytest.raises(NotASessionError, match="2024-01-15 is not a trading session of XNYS"):
        session_close_utc(date(2024, 1, 15))


def test_next_close_after_a_friday_close_before_a_monday_holiday_is_tuesday() -> None:
    tuesday_close = new_york(2024, 1, 16, 16)
    assert next_session_close_utc(new_york(2024, 1, 12, 16, 30)) == tuesday_close
    # Exactly at the close the answer is the next one, so a job firing at a close moves on.
    assert next_session_close_utc(new_york(2024, 1, 12, 16)) == tuesday_close
    # A minute before the close it is still Friday's close.
    assert next_session_close_utc(new_york(2024, 1, 12, 15, 59)) == new_york(2024, 1, 12, 16)


def test_next_close_before_the_day_after_thanksgiving_is_the_early_close() -> None:
    after = new_york(2023, 11, 22, 17)
    assert next_session_close_utc(after) == datetime(2023, 11, 24, 18, 0, tzinfo=UTC)


def test_next_close_needs_an_aware_datetime() -> None:
    with pytest.raises(NaiveDatetimeError):
        next_session_close_utc(datetime(2024, 1, 12, 16))


def test_last_closed_session() -> None:
    # During Tuesday's session after MLK day, the newest final bar is Friday's.
    assert last_closed_session(new_york(2024, 1, 16, 15)) == date(2024, 1, 12)
    assert last_closed_session(new_york(2024, 1, 16, 16)) == date(2024, 1, 16)


def test_out_of_range_and_unknown_exchange_are_named_errors() -> None:
    with pytest.raises(DateOutsideCalendarError, match="1985-06-03 is outside the XNYS calendar"):
        is_trading_day(date(1985, 6, 3))
    with pytest.raises(UnknownExchangeError, match="NOPE"):
        is_trading_day(date(2024, 1, 12), "NOPE")
    with pytest.raises(ValueError, match="n must be >= 0"):
        trading_days_after(date(2024, 1, 12), -1)


def test_calendar_is_built_once_per_exchange() -> None:
    first = trading_calendar._calendar("XNYS")
    assert trading_calendar._calendar("XNYS") is first
    assert trading_calendar._calendar("XLON") is not first
