"""An APScheduler trigger that fires a fixed delay after an exchange's session closes.

Cron cannot express "after the close, on trading days only": holidays move every year and early
closes (13:00 the day after Thanksgiving) shift the close itself. This trigger asks the exchange
calendar for each next close, so a weekend or a holiday simply has no fire time. Its state is
plain JSON (the data store uses APScheduler's JSON serializer, never pickle).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from apscheduler.abc import Trigger

from db.models import RetrainCadence
from forecasting.calendar import (
    DEFAULT_EXCHANGE,
    DateOutsideCalendarError,
    last_closed_session,
    next_session_close_utc,
    trading_days_after,
)

STATE_VERSION = 1


class InvalidTriggerStateError(ValueError):
    """A stored trigger state this code cannot read (a newer version, or a damaged row)."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"cannot restore SessionCloseTrigger: {problem}")
        self.problem = problem


@dataclass(frozen=True, kw_only=True)
class TriggerSignature:
    """What a trigger does, without where it is in its iteration: equal signatures need no update."""

    exchange: str
    delay_seconds: float
    cadence: RetrainCadence

    def as_text(self) -> str:
        return f"{self.exchange}+{self.delay_seconds:g}s/{self.cadence.value}"


def _aware(value: datetime | str) -> datetime:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    if parsed.tzinfo is None:
        raise InvalidTriggerStateError(f"naive datetime {parsed.isoformat()}")
    return parsed.astimezone(UTC)


def session_ends_period(session: date, cadence: RetrainCadence, exchange: str) -> bool:
    """Whether ``session`` is one ``cadence`` fires after: every session for ``daily``, the last
    session of its ISO week for ``weekly``, of its month for ``monthly``. Shared by the live
    trigger and the market replay, so both retrain on the same days."""
    if cadence is RetrainCadence.DAILY:
        return True
    following = trading_days_after(session, 1, exchange)[0]
    if cadence is RetrainCadence.WEEKLY:
        return following.isocalendar()[:2] != session.isocalendar()[:2]
    return (following.year, following.month) != (session.year, session.month)


class SessionCloseTrigger(Trigger):
    """Fires ``delay`` after each qualifying session close of ``exchange``, strictly after
    ``start_time``.

    ``cadence`` picks the closes: ``daily`` every session, ``weekly`` the last session of each
    ISO week (Friday, or Thursday when Friday is a holiday), ``monthly`` the last session of each
    month.
    """

    __slots__ = ("_last_fire_time", "cadence", "delay", "exchange", "start_time")

    def __init__(
        self,
        *,
        exchange: str = DEFAULT_EXCHANGE,
        delay: timedelta = timedelta(minutes=30),
        cadence: RetrainCadence | str = RetrainCadence.DAILY,
        start_time: datetime | None = None,
    ) -> None:
        if delay < timedelta(0):
            raise ValueError("delay must not be negative")
        self.exchange = exchange
        self.delay = delay
        self.cadence = RetrainCadence(cadence)
        self.start_time = _aware(start_time) if start_time is not None else datetime.now(UTC)
        self._last_fire_time: datetime | None = None

    @property
    def signature(self) -> TriggerSignature:
        return TriggerSignature(
            exchange=self.exchange,
            delay_seconds=self.delay.total_seconds(),
            cadence=self.cadence,
        )

    def next(self) -> datetime | None:
        after = self._last_fire_time if self._last_fire_time is not None else self.start_time
        try:
            close = self._next_qualifying_close(after - self.delay)
        except DateOutsideCalendarError:
            # Past the calendar's horizon (two years ahead): the schedule ends, and the periodic
            # schedule sync re-creates it once a newer calendar is built.
            return None
        fire_time = close + self.delay
        self._last_fire_time = fire_time
        return fire_time

    def _next_qualifying_close(self, after: datetime) -> datetime:
        close = next_session_close_utc(after, self.exchange)
        while not self._qualifies(close):
            close = next_session_close_utc(close, self.exchange)
        return close

    def _qualifies(self, close: datetime) -> bool:
        if self.cadence is RetrainCadence.DAILY:
            return True
        return session_ends_period(
            last_closed_session(close, self.exchange), self.cadence, self.exchange
        )

    def __getstate__(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "exchange": self.exchange,
            "delay": self.delay.total_seconds(),
            "cadence": self.cadence.value,
            "start_time": self.start_time.isoformat(),
            "last_fire_time": (
                self._last_fire_time.isoformat() if self._last_fire_time is not None else None
            ),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        try:
            version = state["version"]
            if version > STATE_VERSION:
                raise InvalidTriggerStateError(f"state version {version} is newer than this code")
            self.exchange = str(state["exchange"])
            self.delay = timedelta(seconds=float(state["delay"]))
            self.cadence = RetrainCadence(state["cadence"])
            self.start_time = _aware(state["start_time"])
            last = state["last_fire_time"]
            self._last_fire_time = _aware(last) if last is not None else None
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidTriggerStateError):
                raise
            raise InvalidTriggerStateError(str(exc)) from exc

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(exchange={self.exchange!r}, delay={self.delay}, "
            f"cadence={self.cadence.value!r}, start_time='{self.start_time.isoformat()}')"
        )
