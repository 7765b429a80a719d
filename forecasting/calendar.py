"""Trading-calendar answers for forecasts and schedules: which days trade, and when each session closes.

Forecast steps are trading sessions, not calendar days: one step after Friday 2024-01-12 is Tuesday
2024-01-16, because Monday was Martin Luther King Jr. Day. The scheduler runs ingest after each
session's close, which is 16:00 New York on most days and 13:00 on early closes (the day after
Thanksgiving). Everything here comes from ``exchange_calendars``; a calendar is built once per
exchange and covers 1990-01-01 to the end of the year two years from now, because the library's
default window (about twenty years back) misses the bundled sample's 1995 data.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Final

import pandas as pd

if TYPE_CHECKING:
    from exchange_calendars import ExchangeCalendar

DEFAULT_EXCHANGE: Final = "XNYS"
#: First day every calendar covers (the bundled sample starts in 1995).
CALENDAR_START: Final = date(1990, 1, 1)
#: Calendars reach this many whole years past the current one.
YEARS_AHEAD: Final = 2


class UnknownExchangeError(ValueError):
    """No trading calendar exists under this name (use ISO MIC codes such as ``XNYS``)."""

    def __init__(self, exchange: str) -> None:
        shown = exchange if len(exchange) <= 20 else exchange[:17] + "..."
        super().__init__(f"unknown exchange calendar {shown!r} (expected an ISO MIC such as XNYS)")
        self.exchange = exchange


class DateOutsideCalendarError(ValueError):
    """A question about a day the calendar does not cover, so any answer would be a guess."""

    def __init__(self, value: date | datetime, exchange: str, first: date, last: date) -> None:
        super().__init__(
            f"{value.isoformat()} is outside the {exchange} calendar "
            f"({first.isoformat()} .. {last.isoformat()})"
        )
        self.value = value
        self.exchange = exchange


class NotASessionError(ValueError):
    """The day is not a trading session of the exchange (a weekend or a holiday)."""

    def __init__(self, day: date, exchange: str) -> None:
        super().__init__(f"{day.isoformat()} is not a trading session of {exchange}")
        self.day = day
        self.exchange = exchange


class NaiveDatetimeError(ValueError):
    """A datetime without a timezone, which could mean any instant within a day."""

    def __init__(self, value: datetime) -> None:
        super().__init__(f"datetime {value.isoformat()} has no timezone; pass an aware datetime")
        self.value = value


@dataclass(frozen=True, kw_only=True)
class _Calendar:
    """One exchange's sessions and closes as sorted arrays, for exact ``searchsorted`` lookups."""

    exchange: str
    first: date
    last: date
    sessions: pd.DatetimeIndex  # naive midnight labels
    closes: pd.DatetimeIndex  # tz-aware UTC, aligned with sessions

    def check_day(self, day: date) -> pd.Timestamp:
        if not self.first <= day <= self.last:
            raise DateOutsideCalendarError(day, self.exchange, self.first, self.last)
        return pd.Timestamp(day)


def is_trading_day(day: date, exchange: str = DEFAULT_EXCHANGE) -> bool:
    """Whether ``day`` is a trading session (not a weekend, not a holiday) of ``exchange``."""
    calendar = _calendar(exchange)
    stamp = calendar.check_day(day)
    position = int(calendar.sessions.searchsorted(stamp))
    return position < len(calendar.sessions) and calendar.sessions[position] == stamp


def trading_days_after(last: date, n: int, exchange: str = DEFAULT_EXCHANGE) -> list[date]:
    """The ``n`` sessions strictly after ``last`` (which need not be a session): forecast targets."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    calendar = _calendar(exchange)
    start = int(calendar.sessions.searchsorted(calendar.check_day(last), side="right"))
    if start + n > len(calendar.sessions):
        raise DateOutsideCalendarError(last, exchange, calendar.first, calendar.last)
    return [stamp.date() for stamp in calendar.sessions[start : start + n]]


def sessions_between(start: date, end: date, exchange: str = DEFAULT_EXCHANGE) -> list[date]:
    """Sessions with ``start <= session <= end``; empty when ``start`` is after ``end``."""
    if start > end:
        return []
    calendar = _calendar(exchange)
    low = int(calendar.sessions.searchsorted(calendar.check_day(start), side="left"))
    high = int(calendar.sessions.searchsorted(calendar.check_day(end), side="right"))
    return [stamp.date() for stamp in calendar.sessions[low:high]]


def session_close_utc(day: date, exchange: str = DEFAULT_EXCHANGE) -> datetime:
    """When the session on ``day`` closes, as an aware UTC datetime (early closes included)."""
    calendar = _calendar(exchange)
    stamp = calendar.check_day(day)
    position = int(calendar.sessions.searchsorted(stamp))
    if position >= len(calendar.sessions) or calendar.sessions[position] != stamp:
        raise NotASessionError(day, exchange)
    return _to_utc_datetime(calendar.closes[position])


def next_session_close_utc(after: datetime, exchange: str = DEFAULT_EXCHANGE) -> datetime:
    """The first session close strictly after the instant ``after`` (which must be tz-aware).

    At the very instant of a close the answer is the *next* session's close, so a scheduler that
    fires at a close and asks again gets a later time, never the same one.
    """
    instant = _aware_utc(after)
    calendar = _calendar(exchange)
    calendar.check_day(instant.date())
    position = int(calendar.closes.searchsorted(instant, side="right"))
    if position >= len(calendar.closes):
        raise DateOutsideCalendarError(after, exchange, calendar.first, calendar.last)
    return _to_utc_datetime(calendar.closes[position])


def last_closed_session(at: datetime, exchange: str = DEFAULT_EXCHANGE) -> date:
    """The latest session whose close is at or before ``at``: the newest bar that is final."""
    instant = _aware_utc(at)
    calendar = _calendar(exchange)
    calendar.check_day(instant.date())
    position = int(calendar.closes.searchsorted(instant, side="right")) - 1
    if position < 0:
        raise DateOutsideCalendarError(at, exchange, calendar.first, calendar.last)
    result: date = calendar.sessions[position].date()
    return result


def _aware_utc(value: datetime) -> pd.Timestamp:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise NaiveDatetimeError(value)
    return pd.Timestamp(value).tz_convert(UTC)


def _to_utc_datetime(stamp: pd.Timestamp) -> datetime:
    result: datetime = stamp.tz_convert(UTC).to_pydatetime()
    return result


def _calendar(exchange: str) -> _Calendar:
    # The horizon moves with the clock, so a long-running process rebuilds once a year.
    return _calendar_until(exchange, datetime.now(UTC).year + YEARS_AHEAD)


@functools.lru_cache(maxsize=16)
def _calendar_until(exchange: str, last_year: int) -> _Calendar:
    # Imported here: exchange_calendars takes ~0.5 s to import and most processes never need it.
    import exchange_calendars
    from exchange_calendars.errors import InvalidCalendarName

    last = date(last_year, 12, 31)
    try:
        calendar: ExchangeCalendar = exchange_calendars.get_calendar(
            exchange, start=pd.Timestamp(CALENDAR_START), end=pd.Timestamp(last)
        )
    except InvalidCalendarName as exc:
        raise UnknownExchangeError(exchange) from exc
    return _Calendar(
        exchange=exchange,
        first=CALENDAR_START,
        last=last,
        sessions=pd.DatetimeIndex(calendar.sessions),
        closes=pd.DatetimeIndex(calendar.closes).tz_convert(UTC),
    )
