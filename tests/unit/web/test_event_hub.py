"""The event tailer on a real database: in-order delivery, holes left by out-of-order commits,
listeners, subscriptions and replays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Event
from web.events import EventHub, StreamClosedError, Subscription, replay
from web.schemas.events import EventOut

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _insert(
    sessions: async_sessionmaker[AsyncSession],
    *ids: int,
    kind: str = "forecast.ready",
    symbol: str = "DIS",
) -> None:
    """Rows with chosen ids, as concurrent transactions would leave them (holes included)."""
    async with sessions() as session, session.begin():
        for event_id in ids:
            session.add(Event(id=event_id, type=kind, symbol=symbol, payload={"n": event_id}))


def _hub(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, heard: list[int]
) -> EventHub:
    return EventHub(
        sessions,
        poll_interval_s=0.01,
        gap_grace_s=5.0,
        listeners=[lambda event: heard.append(event.id)],
        clock=clock,
    )


async def _drain(subscription: Subscription) -> list[int]:
    ids = []
    while (event := await subscription.next(idle_s=0.01)) is not None:
        ids.append(event.id)
    return ids


async def test_starts_at_the_latest_event_and_delivers_new_ones_in_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _insert(sessions, 1, 2)
    heard: list[int] = []
    hub = _hub(sessions, FakeClock(), heard)
    await hub.poll()
    assert hub.position == 2  # history is not re-announced on start-up
    subscription = hub.subscribe()
    assert subscription.start == 2

    await _insert(sessions, 3, 4)
    assert await hub.poll() == 2

    assert await _drain(subscription) == [3, 4]
    assert heard == [3, 4]
    assert hub.position == 4


async def test_a_hole_holds_later_events_back_until_it_fills(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _insert(sessions, 1)
    heard: list[int] = []
    clock = FakeClock()
    hub = _hub(sessions, clock, heard)
    await hub.poll()
    subscription = hub.subscribe()

    await _insert(sessions, 3)  # id 2 belongs to a transaction that has not committed yet
    assert await hub.poll() == 0
    assert await _drain(subscription) == []
    assert heard == [3]  # the cache hears about it at once

    clock.now = 1.0
    await _insert(sessions, 2)  # it commits
    assert await hub.poll() == 2
    assert await _drain(subscription) == [2, 3]
    assert heard == [3, 2]  # each event announced once


async def test_a_hole_that_stays_empty_is_skipped_after_the_grace(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _insert(sessions, 1)
    clock = FakeClock()
    hub = _hub(sessions, clock, [])
    await hub.poll()
    subscription = hub.subscribe()

    await _insert(sessions, 3, 4)  # id 2 was rolled back
    await hub.poll()
    clock.now = 4.9
    assert await hub.poll() == 0
    clock.now = 5.0
    assert await hub.poll() == 2
    assert await _drain(subscription) == [3, 4]
    assert hub.position == 4


async def test_subscriptions_filter_by_symbol_and_type(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hub = _hub(sessions, FakeClock(), [])
    await hub.poll()
    ko_models = hub.subscribe(symbol="KO", types={"model.promoted"})
    everything = hub.subscribe()
    await _insert(sessions, 1, kind="model.promoted", symbol="DIS")
    await _insert(sessions, 2, kind="model.promoted", symbol="KO")
    await _insert(sessions, 3, kind="job.failed", symbol="KO")
    await hub.poll()
    assert await _drain(ko_models) == [2]
    assert await _drain(everything) == [1, 2, 3]
    hub.unsubscribe(everything)
    assert hub.subscriber_count == 1


async def test_closing_the_hub_ends_every_stream(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hub = _hub(sessions, FakeClock(), [])
    subscription = hub.subscribe()
    hub.close()
    with pytest.raises(StreamClosedError, match="shutting down"):
        await subscription.next(idle_s=1)
    late = hub.subscribe()
    with pytest.raises(StreamClosedError):
        await late.next(idle_s=1)


async def test_a_client_that_falls_behind_is_cut_off_after_what_it_had() -> None:
    subscription = Subscription(start=0, symbol=None, types=None)
    now = datetime.now(UTC)
    for event_id in range(1, 1003):
        subscription.offer(EventOut(id=event_id, type="x", symbol=None, payload={}, created_at=now))
    received = []
    with pytest.raises(StreamClosedError, match="Last-Event-ID"):
        while True:
            event = await subscription.next(idle_s=0.01)
            assert event is not None
            received.append(event.id)
    assert received == list(range(1, 1001))


async def test_replay_reads_a_range_in_pages(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _insert(sessions, *range(1, 1201))
    await _insert(sessions, 1201, kind="job.failed")
    ids = [
        event.id async for event in replay(sessions, after=100, until=1150, symbol=None, types=None)
    ]
    assert ids == list(range(101, 1151))
    failed = [
        event.id
        async for event in replay(sessions, after=0, until=None, symbol="DIS", types={"job.failed"})
    ]
    assert failed == [1201]
