"""Calendars beyond New York: each exchange's own sessions, holidays, closes and clock.

Every expected date and time below is a fact about the exchange (B3 shuts for Carnival and on
31 December, London for Boxing Day, Tokyo for Coming of Age Day, ...), checked through
exchange-calendars, and set beside what New York's calendar would have said.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from forecasting.calendar import (
    DateOutsideCalendarError,
    UnknownExchangeError,
    exchange_timezone,
    is_trading_day,
    last_closed_session,
    next_session_close_utc,
    session_close_local,
    session_close_utc,
    trading_days_after,
)
from forecasting.forecast import build_forecast
from forecasting.listings import listing_of

NON_US = ["BVMF", "XLON", "XTSE", "XTKS", "XHKG", "XETR", "XPAR", "XASX", "XNSE", "XBOM"]


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def bars_ending(last: date, rows: int = 40, exchange: str = "BVMF") -> pd.DataFrame:
    """Real sessions of ``exchange`` up to ``last``, with a gently rising close."""
    days = pd.DatetimeIndex(pd.bdate_range(end=last, periods=rows * 2))
    sessions = [day for day in days if is_trading_day(day.date(), exchange)][-rows:]
    close = 20.0 * np.exp(np.linspace(0.0, 0.05, len(sessions)))
    return pd.DataFrame(
        {
            "date": pd.DatetimeIndex(sessions),
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "adj_close": np.nan,
            "volume": 1_000_000.0,
        }
    )


def test_petr4_after_friday_2018_12_28_targets_b3_sessions_not_new_yorks() -> None:
    listing = listing_of("PETR4.SA")
    bars = bars_ending(date(2018, 12, 28))
    quantiles = {0.8: np.full(3, 0.02), 0.95: np.full(3, 0.04)}

    b3 = build_forecast(
        model_kind="naive",
        bars=bars,
        log_returns=[0.0, 0.0, 0.0],
        quantiles=quantiles,
        exchange=listing.exchange,
    )
    new_york = build_forecast(
        model_kind="naive", bars=bars, log_returns=[0.0] * 3, quantiles=quantiles, exchange="XNYS"
    )

    assert (listing.exchange, listing.currency) == ("BVMF", "BRL")
    assert b3.last_observed_date == date(2018, 12, 28)
    assert [step.target_date for step in b3.steps] == [
        date(2019, 1, 2),
        date(2019, 1, 3),
        date(2019, 1, 4),
    ]
    assert [step.target_date for step in new_york.steps] == [
        date(2018, 12, 31),
        date(2019, 1, 2),
        date(2019, 1, 3),
    ]


@pytest.mark.parametrize(
    ("exchange", "before", "after", "local_close", "utc_before", "utc_after"),
    [
        # London's clocks go forward on Sunday 31 March 2024 (Good Friday and Easter Monday shut).
        ("XLON", date(2024, 3, 28), date(2024, 4, 2), time(16, 30), time(16, 30), time(15, 30)),
        ("XETR", date(2024, 3, 28), date(2024, 4, 2), time(17, 30), time(16, 30), time(15, 30)),
        ("XPAR", date(2024, 3, 28), date(2024, 4, 2), time(17, 30), time(16, 30), time(15, 30)),
        # Toronto follows New York's change on Sunday 10 March 2024.
        ("XTSE", date(2024, 3, 8), date(2024, 3, 11), time(16), time(21), time(20)),
        # Sydney's clocks go back on Sunday 7 April 2024: the UTC close moves later.
        ("XASX", date(2024, 4, 5), date(2024, 4, 8), time(16), time(5), time(6)),
        # Brazil's last daylight saving began on Sunday 4 November 2018.
        ("BVMF", date(2018, 11, 1), date(2018, 11, 5), time(17), time(20), time(19)),
        # No daylight saving: New York's change on 10 March 2024 moves nothing.
        ("XTKS", date(2024, 3, 8), date(2024, 3, 11), time(15), time(6), time(6)),
        ("XHKG", date(2024, 3, 8), date(2024, 3, 11), time(16), time(8), time(8)),
        ("XNSE", date(2024, 3, 7), date(2024, 3, 11), time(15, 30), time(10), time(10)),
    ],
)
def test_the_close_keeps_its_local_time_across_a_daylight_saving_change(
    exchange: str,
    before: date,
    after: date,
    local_close: time,
    utc_before: time,
    utc_after: time,
) -> None:
    zone = exchange_timezone(exchange)
    for day, utc_time in ((before, utc_before), (after, utc_after)):
        local = session_close_local(day, exchange)
        assert local.tzinfo == zone
        assert (local.date(), local.time()) == (day, local_close)
        assert session_close_utc(day, exchange) == datetime.combine(day, utc_time, tzinfo=UTC)
        assert local == session_close_utc(day, exchange)


@pytest.mark.parametrize(
    ("exchange", "day", "local_close"),
    [
        ("XLON", date(2024, 12, 24), time(12, 30)),
        ("XTSE", date(2024, 12, 24), time(13)),
        ("XHKG", date(2024, 2, 9), time(12)),  # Lunar New Year's Eve
        ("XASX", date(2024, 12, 24), time(14, 10)),
        ("XETR", date(2024, 12, 30), time(14)),
        ("XPAR", date(2024, 12, 24), time(14, 5)),
    ],
)
def test_early_closes_in_the_exchanges_own_time(
    exchange: str, day: date, local_close: time
) -> None:
    assert session_close_local(day, exchange).time() == local_close
    assert next_session_close_utc(
        datetime.combine(day, time(9), tzinfo=exchange_timezone(exchange)), exchange
    ) == session_close_utc(day, exchange)


@pytest.mark.parametrize(
    ("exchange", "last", "holiday", "expected"),
    [
        # Carnival Monday and Tuesday.
        ("BVMF", date(2024, 2, 9), date(2024, 2, 12), [date(2024, 2, 14), date(2024, 2, 15)]),
        # Tiradentes, Friday 21 April 2023.
        ("BVMF", date(2023, 4, 20), date(2023, 4, 21), [date(2023, 4, 24), date(2023, 4, 25)]),
        # Boxing Day (Christmas shuts both).
        ("XLON", date(2024, 12, 24), date(2024, 12, 26), [date(2024, 12, 27), date(2024, 12, 30)]),
        # Canada Day, Monday 1 July 2024.
        ("XTSE", date(2024, 6, 28), date(2024, 7, 1), [date(2024, 7, 2), date(2024, 7, 3)]),
        # Coming of Age Day, Monday 8 January 2024.
        ("XTKS", date(2024, 1, 5), date(2024, 1, 8), [date(2024, 1, 9), date(2024, 1, 10)]),
        # Lunar New Year, Monday 12 and Tuesday 13 February 2024.
        ("XHKG", date(2024, 2, 9), date(2024, 2, 12), [date(2024, 2, 14), date(2024, 2, 15)]),
        # Labour Day, Wednesday 1 May 2024.
        ("XETR", date(2024, 4, 30), date(2024, 5, 1), [date(2024, 5, 2), date(2024, 5, 3)]),
        ("XPAR", date(2024, 4, 30), date(2024, 5, 1), [date(2024, 5, 2), date(2024, 5, 3)]),
        # Australia Day, Friday 26 January 2024.
        ("XASX", date(2024, 1, 25), date(2024, 1, 26), [date(2024, 1, 29), date(2024, 1, 30)]),
        # Republic Day, Friday 26 January 2024.
        ("XNSE", date(2024, 1, 25), date(2024, 1, 26), [date(2024, 1, 29), date(2024, 1, 30)]),
    ],
)
def test_an_exchange_only_holiday_is_skipped(
    exchange: str, last: date, holiday: date, expected: list[date]
) -> None:
    assert not is_trading_day(holiday, exchange)
    assert is_trading_day(holiday, "XNYS")
    assert trading_days_after(last, 2, exchange) == expected
    assert holiday in trading_days_after(last, 2, "XNYS")


@pytest.mark.parametrize("exchange", NON_US)
@pytest.mark.parametrize(
    "us_holiday",
    [date(2024, 7, 4), date(2024, 11, 28)],
    ids=["independence-day", "thanksgiving"],
)
def test_a_day_new_york_is_shut_but_the_exchange_trades_is_kept(
    exchange: str, us_holiday: date
) -> None:
    day_before = date(us_holiday.year, us_holiday.month, us_holiday.day - 1)

    assert not is_trading_day(us_holiday, "XNYS")
    assert is_trading_day(us_holiday, exchange)
    assert trading_days_after(day_before, 1, exchange) == [us_holiday]
    assert trading_days_after(day_before, 1, "XNYS") != [us_holiday]


def test_the_last_closed_session_is_the_exchanges_own() -> None:
    # Tuesday 9 January 2024, 14:00 in Tokyo: Tokyo still open, Monday was Coming of Age Day.
    during_tokyo = utc(2024, 1, 9, 5)
    after_tokyo = utc(2024, 1, 9, 7)
    assert last_closed_session(during_tokyo, "XTKS") == date(2024, 1, 5)
    assert last_closed_session(after_tokyo, "XTKS") == date(2024, 1, 9)
    # New York, at the same instants, last closed on Monday the 8th.
    assert last_closed_session(after_tokyo, "XNYS") == date(2024, 1, 8)
    # São Paulo on 2 January 2019: closed at 17:00 BRST (19:00 UTC); 31 December and
    # 1 January did not trade.
    assert last_closed_session(utc(2019, 1, 2, 18), "BVMF") == date(2018, 12, 28)
    assert last_closed_session(utc(2019, 1, 2, 19), "BVMF") == date(2019, 1, 2)
    assert last_closed_session(utc(2019, 1, 2, 18), "XNYS") == date(2018, 12, 31)


def test_the_next_close_after_b3s_last_2018_session() -> None:
    friday_close = session_close_utc(date(2018, 12, 28), "BVMF")
    assert friday_close == utc(2018, 12, 28, 19)
    assert next_session_close_utc(friday_close, "BVMF") == utc(2019, 1, 2, 19)
    assert next_session_close_utc(friday_close, "XNYS") == utc(2018, 12, 28, 21)


def test_a_calendar_covers_only_what_the_library_knows_for_its_exchange() -> None:
    # Tokyo's rules start in 1997; asking earlier is a named error, not a guess.
    assert trading_days_after(date(1997, 1, 6), 1, "XTKS") == [date(1997, 1, 7)]
    with pytest.raises(DateOutsideCalendarError, match="outside the XTKS calendar"):
        is_trading_day(date(1996, 6, 3), "XTKS")
    # exchange-calendars 4.13 records Indian holidays only to the end of 2026.
    assert trading_days_after(date(2026, 12, 28), 2, "XNSE") == [
        date(2026, 12, 29),
        date(2026, 12, 30),
    ]
    with pytest.raises(
        DateOutsideCalendarError, match=r"XNSE calendar \(1997-01-01 .. 2026-12-31\)"
    ):
        trading_days_after(date(2026, 12, 28), 5, "XNSE")


def test_time_zones_come_from_the_calendar() -> None:
    assert exchange_timezone("BVMF") == ZoneInfo("America/Sao_Paulo")
    assert exchange_timezone("XLON") == ZoneInfo("Europe/London")
    assert exchange_timezone("XTKS") == ZoneInfo("Asia/Tokyo")
    assert exchange_timezone() == ZoneInfo("America/New_York")


def test_an_unknown_exchange_names_the_accepted_ones() -> None:
    with pytest.raises(UnknownExchangeError, match=r"unknown exchange 'B3'.*BVMF.*XNSE"):
        trading_days_after(date(2024, 1, 2), 1, "B3")
