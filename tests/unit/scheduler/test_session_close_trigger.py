"""The after-the-close trigger: no fire time on NYSE holidays or weekends, early closes and
daylight saving honoured, cadences, and a JSON state that survives the data store."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import islice

import pytest
from apscheduler.serializers.json import JSONSerializer

from db.models import RetrainCadence
from forecasting.calendar import is_trading_day
from scheduler.triggers import InvalidTriggerStateError, SessionCloseTrigger

HALF_HOUR = timedelta(minutes=30)


def _fires(trigger: SessionCloseTrigger, n: int) -> list[datetime]:
    return list(islice(trigger, n))


def test_thanksgiving_week_2025_has_no_run_on_the_holiday_and_an_early_one_after() -> None:
    trigger = SessionCloseTrigger(delay=HALF_HOUR, start_time=datetime(2025, 11, 24, tzinfo=UTC))
    fires = _fires(trigger, 5)
    assert [f.date() for f in fires] == [
        date(2025, 11, 24),
        date(2025, 11, 25),
        date(2025, 11, 26),
        # Thursday 27th is Thanksgiving; Friday 28th closes at 13:00 New York (18:00 UTC).
        date(2025, 11, 28),
        date(2025, 12, 1),
    ]
    assert fires[0] == datetime(2025, 11, 24, 21, 30, tzinfo=UTC)  # 16:00 EST + 30 min
    assert fires[3] == datetime(2025, 11, 28, 18, 30, tzinfo=UTC)


def test_independence_day_and_weekends_produce_no_fire_time() -> None:
    trigger = SessionCloseTrigger(delay=HALF_HOUR, start_time=datetime(2025, 6, 30, tzinfo=UTC))
    days = [f.date() for f in _fires(trigger, 6)]
    # Thursday 3 July closes early, Friday 4 July is a holiday, then the weekend.
    assert days == [
        date(2025, 6, 30),
        date(2025, 7, 1),
        date(2025, 7, 2),
        date(2025, 7, 3),
        date(2025, 7, 7),
        date(2025, 7, 8),
    ]
    assert date(2025, 7, 4) not in days


def test_a_year_of_fire_times_falls_only_on_trading_days() -> None:
    trigger = SessionCloseTrigger(delay=HALF_HOUR, start_time=datetime(2025, 1, 1, tzinfo=UTC))
    fires = _fires(trigger, 250)
    assert all(is_trading_day(f.date()) for f in fires)
    assert all(f.weekday() < 5 for f in fires)
    assert len({f.date() for f in fires}) == 250
    # Christmas, New Year's Day 2026 and Good Friday 2025 are skipped.
    skipped = {date(2025, 12, 25), date(2026, 1, 1), date(2025, 4, 18)}
    assert not skipped & {f.date() for f in fires}


def test_close_moves_with_daylight_saving_in_utc() -> None:
    summer = _fires(SessionCloseTrigger(start_time=datetime(2025, 7, 7, tzinfo=UTC)), 1)[0]
    winter = _fires(SessionCloseTrigger(start_time=datetime(2025, 12, 8, tzinfo=UTC)), 1)[0]
    assert (summer.hour, summer.minute) == (20, 30)  # 16:00 EDT
    assert (winter.hour, winter.minute) == (21, 30)  # 16:00 EST


def test_first_fire_is_strictly_after_the_start() -> None:
    exact = datetime(2025, 11, 24, 21, 30, tzinfo=UTC)  # a fire time itself
    trigger = SessionCloseTrigger(delay=HALF_HOUR, start_time=exact)
    assert trigger.next() == datetime(2025, 11, 25, 21, 30, tzinfo=UTC)
    # Between a close and its delayed fire time the same close still fires.
    trigger = SessionCloseTrigger(delay=HALF_HOUR, start_time=exact - timedelta(minutes=10))
    assert trigger.next() == exact


def test_weekly_cadence_fires_after_the_last_session_of_each_week() -> None:
    trigger = SessionCloseTrigger(
        cadence=RetrainCadence.WEEKLY,
        delay=timedelta(hours=2),
        start_time=datetime(2025, 3, 31, tzinfo=UTC),
    )
    days = [f.date() for f in _fires(trigger, 4)]
    # Good Friday (18 April 2025) is a holiday, so that week's run is on Thursday.
    assert days == [date(2025, 4, 4), date(2025, 4, 11), date(2025, 4, 17), date(2025, 4, 25)]


def test_monthly_cadence_fires_after_the_last_session_of_each_month() -> None:
    trigger = SessionCloseTrigger(
        cadence=RetrainCadence.MONTHLY, start_time=datetime(2025, 10, 15, tzinfo=UTC)
    )
    days = [f.date() for f in _fires(trigger, 3)]
    assert days == [date(2025, 10, 31), date(2025, 11, 28), date(2025, 12, 31)]


def test_other_exchanges_use_their_own_calendar() -> None:
    # London: no session on the UK's 25-26 December; the close is 16:30 London time.
    trigger = SessionCloseTrigger(
        exchange="XLON", delay=timedelta(0), start_time=datetime(2025, 12, 23, 18, tzinfo=UTC)
    )
    fires = _fires(trigger, 2)
    assert [f.date() for f in fires] == [date(2025, 12, 24), date(2025, 12, 29)]


def test_state_round_trips_through_apscheduler_json_serializer() -> None:
    serializer = JSONSerializer()
    trigger = SessionCloseTrigger(
        exchange="XNYS",
        delay=timedelta(minutes=45),
        cadence=RetrainCadence.WEEKLY,
        start_time=datetime(2025, 11, 1, tzinfo=UTC),
    )
    first = trigger.next()
    restored = serializer.deserialize(serializer.serialize(trigger))
    assert isinstance(restored, SessionCloseTrigger)
    assert restored.signature == trigger.signature
    # It continues where the original was, not from its start.
    assert restored.next() == trigger.next()
    assert first is not None and restored.next() > first  # type: ignore[operator]


def test_unreadable_state_is_refused_with_a_clear_error() -> None:
    trigger = SessionCloseTrigger.__new__(SessionCloseTrigger)
    with pytest.raises(InvalidTriggerStateError, match="newer"):
        trigger.__setstate__({"version": 99})
    state = SessionCloseTrigger().__getstate__()
    state["start_time"] = "2025-01-01T00:00:00"  # naive
    with pytest.raises(InvalidTriggerStateError, match="naive"):
        trigger.__setstate__(state)


def test_a_negative_delay_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        SessionCloseTrigger(delay=timedelta(minutes=-1))
