"""The ingest trigger of a symbol outside New York fires after its own exchange's closes: at the
same local time on both sides of a daylight-saving change (so at another UTC time), never on the
exchange's own holidays, and on days its exchange trades while New York is shut."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from forecasting.calendar import exchange_timezone, is_trading_day
from scheduler.triggers import SessionCloseTrigger

DELAY = timedelta(minutes=30)


def _fires_by_local_day(exchange: str, start: datetime, n: int) -> dict[date, datetime]:
    """The first ``n`` fires (each less the delay, i.e. the close), keyed by the local date."""
    zone = exchange_zone(exchange)
    trigger = SessionCloseTrigger(exchange=exchange, delay=DELAY, start_time=start)
    closes = [fire - DELAY for fire in islice(trigger, n)]
    return {close.astimezone(zone).date(): close for close in closes}


def exchange_zone(exchange: str) -> ZoneInfo:
    return exchange_timezone(exchange)


@pytest.mark.parametrize(
    ("exchange", "before", "after", "local_close"),
    [
        # Europe leaves summer time on 26 October 2025, North America on 2 November.
        pytest.param("XLON", date(2025, 10, 24), date(2025, 10, 27), time(16, 30), id="london"),
        pytest.param("XETR", date(2025, 10, 24), date(2025, 10, 27), time(17, 30), id="xetra"),
        pytest.param("XPAR", date(2025, 3, 28), date(2025, 3, 31), time(17, 30), id="paris"),
        pytest.param("XTSE", date(2025, 10, 31), date(2025, 11, 3), time(16), id="toronto"),
        # Sydney enters summer time on 5 October 2025 (southern spring).
        pytest.param("XASX", date(2025, 10, 3), date(2025, 10, 6), time(16), id="sydney"),
        # Brazil's last summer time began on 4 November 2018; Friday 2 November was a B3
        # holiday (Finados), so Thursday's close is followed by Monday's.
        pytest.param("BVMF", date(2018, 11, 1), date(2018, 11, 5), time(17), id="sao-paulo"),
    ],
)
def test_the_close_keeps_its_local_time_across_a_daylight_saving_change(
    exchange: str, before: date, after: date, local_close: time
) -> None:
    start = datetime.combine(before, time(0), tzinfo=UTC) - timedelta(days=1)

    closes = _fires_by_local_day(exchange, start, 4)

    zone = exchange_zone(exchange)
    assert before in closes and after in closes
    assert closes[before].astimezone(zone).time() == local_close
    assert closes[after].astimezone(zone).time() == local_close
    # Same wall-clock time, another instant: the UTC offset moved by an hour.
    moved = closes[after].astimezone(UTC).time() != closes[before].astimezone(UTC).time()
    assert moved
    days = sorted(closes)
    assert days[days.index(before) + 1] == after  # nothing in between (weekend, holiday)


@pytest.mark.parametrize(
    ("exchange", "holiday", "new_york_closed"),
    [
        # Carnival Monday and Tuesday; New York's 4 July.
        pytest.param("BVMF", date(2025, 3, 3), date(2025, 7, 4), id="sao-paulo"),
        # The UK's summer bank holiday; Thanksgiving.
        pytest.param("XLON", date(2025, 8, 25), date(2025, 11, 27), id="london"),
        # Canada Day; Martin Luther King Jr. Day.
        pytest.param("XTSE", date(2025, 7, 1), date(2025, 1, 20), id="toronto"),
        # Tokyo's Marine Day; Independence Day.
        pytest.param("XTKS", date(2025, 7, 21), date(2025, 7, 4), id="tokyo"),
        # Hong Kong's Chung Yeung festival; Thanksgiving.
        pytest.param("XHKG", date(2025, 10, 29), date(2025, 11, 27), id="hong-kong"),
        # Easter Monday (New York trades); 4 July.
        pytest.param("XETR", date(2025, 4, 21), date(2025, 7, 4), id="xetra"),
    ],
)
def test_no_fire_on_the_exchanges_holiday_and_one_when_only_new_york_is_shut(
    exchange: str, holiday: date, new_york_closed: date
) -> None:
    assert is_trading_day(holiday, "XNYS") and not is_trading_day(holiday, exchange)
    assert not is_trading_day(new_york_closed, "XNYS") and is_trading_day(new_york_closed, exchange)

    around_holiday = _fires_by_local_day(exchange, _day_before(holiday), 3)
    around_new_york_closed = _fires_by_local_day(exchange, _day_before(new_york_closed), 3)

    assert holiday not in around_holiday
    assert new_york_closed in around_new_york_closed


def _day_before(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC) - timedelta(days=1)
