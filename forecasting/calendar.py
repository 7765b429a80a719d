"""Trading-calendar answers for forecasts and schedules: which days trade, and when each session closes.

Forecast steps are trading sessions of the symbol's own exchange, not calendar days: one step after
Friday 2024-01-12 in New York is Tuesday 2024-01-16, because Monday was Martin Luther King Jr. Day,
and one step after Friday 2018-12-28 in São Paulo is Wednesday 2019-01-02, because B3 shuts on
31 December. The scheduler runs ingest after each session's close, in the exchange's own time:
16:00 New York on most days and 13:00 on early closes (the day after Thanksgiving), 16:30 London,
15:30 Tokyo. Everything here comes from ``exchange_calendars``, through the exchange codes of
:mod:`forecasting.exchanges`. A calendar is built once per exchange and covers 1990-01-01 to the
end of the year two years from now, because the library's default window (about twenty years back)
misses the bundled sample's 1995 data, cut to what the library can answer for that exchange (Tokyo
from 1997; Mumbai, Shanghai and Singapore only to the end of 2026 in exchange-calendars 4.13).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

import pandas as pd

# Re-exported (``as``, for mypy): callers have always found the default exchange and this error here.
from forecasting.errors import PortableError
from forecasting.exchanges import DEFAULT_EXCHANGE as DEFAULT_EXCHANGE  # noqa: PLC0414
from forecasting.exchanges import UnknownExchangeError as UnknownExchangeError  # noqa: PLC0414
from forecasting.exchanges import calendar_name

if TYPE_CHECKING:
    from exchange_calendars import ExchangeCalendar

#: First day every calendar covers (the bundled sample starts in 1995).
CALENDAR_START: Final = date(1990, 1, 1)
#: Calendars reach this many whole years past the current one.
YEARS_AHEAD: Final = 2


class DateOutsideCalendarError(PortableError, ValueError):
    """A question about a day the calendar does not cover, so any answer would be a guess."""

    def __init__(self, value: date | datetime, exchange: str, first: date, last: date) -> None:
        super().__init__(
            f"{value.isoformat()} is outside the {exchange} calendar "
            f"({first.isoformat()} .. {last.isoformat()})"
        )
        self.value = value
        self.exchange = exchange


class CalendarUnavailableError(PortableError, ValueError):
    """exchange-calendars knows the exchange but cannot build its calendar here.

    A fault of the library, not of the caller: exchange-calendars 4.13 cannot compute Orthodox
    Easter under pandas 3 (Athens, Belgrade, Bucharest, Nicosia) nor Tel Aviv's special closes.
    """

    def __init__(self, exchange: str, detail: str) -> None:
        super().__init__(f"the trading calendar of {exchange} cannot be built here: {detail}")
        self.exchange = exchange
        self.detail = detail


class NotASessionError(PortableError, ValueError):
    """The day is not a trading session of the exchange (a weekend or a holiday)."""

    def __init__(self, day: date, exchange: str) -> None:
        super().__init__(f"{day.isoformat()} is not a trading session of {exchange}")
        self.day = day
        self.exchange = exchange


class NaiveDatetimeError(PortableError, ValueError):
    """A datetime without a timezone, which could mean any instant within a day."""

    def __init__(self, value: datetime) -> None:
        super().__init__(f"datetime {value.isoformat()} has no timezone; pass an aware datetime")
        self.value = value


@dataclass(frozen=True, kw_only=True)
class _Calendar:
    """One exchange's sessions and closes as sorted arrays, for exact ``searchsorted`` lookups."""

    exchange: str
    timezone: ZoneInfo
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


def session_close_utc(day: date, exchange: str = DEFAULT_EXCHANGE) -> datetime:
    """When the session on ``day`` closes, as an aware UTC datetime (early closes included)."""
    calendar = _calendar(exchange)
    stamp = calendar.check_day(day)
    position = int(calendar.sessions.searchsorted(stamp))
    if position >= len(calendar.sessions) or calendar.sessions[position] != stamp:
        raise NotASessionError(day, exchange)
    return _to_utc_datetime(calendar.closes[position])


def session_close_local(day: date, exchange: str = DEFAULT_EXCHANGE) -> datetime:
    """When the session on ``day`` closes, in the exchange's own time zone (early closes included):
    London closes at 16:30 in winter and in summer, while its UTC time moves with the clocks."""
    return session_close_utc(day, exchange).astimezone(exchange_timezone(exchange))


def exchange_timezone(exchange: str = DEFAULT_EXCHANGE) -> ZoneInfo:
    """The time zone the exchange keeps its sessions in (``America/Sao_Paulo`` for ``BVMF``)."""
    return _calendar(exchange).timezone


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

    name = calendar_name(exchange)
    try:
        # The default instance (cached by exchange_calendars) says how far its rules reach.
        bounds: ExchangeCalendar = exchange_calendars.get_calendar(name)
        first, last = _reach(bounds, date(last_year, 12, 31))
        calendar: ExchangeCalendar = exchange_calendars.get_calendar(
            name, start=pd.Timestamp(first), end=pd.Timestamp(last)
        )
    except InvalidCalendarName as exc:
        raise UnknownExchangeError(exchange) from exc
    except (NotImplementedError, ValueError) as exc:
        detail = f"{type(exc).__name__}: {str(exc)[:200] or 'no detail'}"
        raise CalendarUnavailableError(exchange, detail) from exc
    return _Calendar(
        exchange=exchange,
        timezone=ZoneInfo(str(calendar.tz)),
        first=first,
        last=last,
        sessions=pd.DatetimeIndex(calendar.sessions),
        closes=pd.DatetimeIndex(calendar.closes).tz_convert(UTC),
    )


def _reach(calendar: ExchangeCalendar, wanted_last: date) -> tuple[date, date]:
    """``CALENDAR_START .. wanted_last``, cut to the days the library's rules cover for it."""
    first, last = CALENDAR_START, wanted_last
    bound_min: pd.Timestamp | None = calendar.bound_min()
    bound_max: pd.Timestamp | None = calendar.bound_max()
    if bound_min is not None:
        first = max(first, bound_min.date())
    if bound_max is not None:
        last = min(last, bound_max.date())
    return first, last
