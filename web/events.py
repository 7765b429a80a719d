"""Tailing the ``events`` table: one background task per API process polls it by id, tells the
listeners (the forecast cache) what happened, and fans events out to the SSE streams.

Ids are the order. On SQLite one writer at a time makes them commit in id order; on PostgreSQL two
overlapping transactions can commit out of order, so an id may become visible after a higher one.
The tailer therefore delivers strictly in id order and, when it sees a hole, waits for it to fill
for ``gap_grace_s`` (the other transaction is usually milliseconds from committing); a hole that
stays empty that long was a rolled-back insert and is skipped. Listeners hear about every event as
soon as it is visible, holes or not: invalidating a cache early is harmless.

The tailer starts at the newest id when the process starts (history is for replays, not for the
listeners). An event whose transaction commits more than ``gap_grace_s`` after a later one is
stored but not streamed live; a client still gets it by replaying with ``after``, and the cache's
time-to-live covers a missed invalidation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import suppress

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import first_line
from db.repositories import EventRepository
from web.schemas.events import EventOut, event_out

logger = logging.getLogger(__name__)

#: Rows read per poll (and per replay page).
PAGE_SIZE = 500
#: Events buffered per SSE client before it is cut off (it resumes with Last-Event-ID).
SUBSCRIBER_QUEUE_SIZE = 1000
_MAX_BACKOFF_S = 10.0

EventListener = Callable[[EventOut], None]


class StreamClosedError(Exception):
    """A subscription ended: the server is shutting down, or the client fell too far behind."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Subscription:
    """One SSE client's view of the live events, filtered by symbol and type."""

    def __init__(
        self, *, start: int | None, symbol: str | None, types: Collection[str] | None
    ) -> None:
        #: The last id the hub had delivered when this subscription began; older events come
        #: from the database (a replay), newer ones through the queue.
        self.start = start
        self.symbol = symbol
        self.types = frozenset(types) if types else None
        self._queue: asyncio.Queue[EventOut | None] = asyncio.Queue(SUBSCRIBER_QUEUE_SIZE)
        self._ended: str | None = None

    def wants(self, event: EventOut) -> bool:
        if self.symbol is not None and event.symbol != self.symbol:
            return False
        return self.types is None or event.type in self.types

    def offer(self, event: EventOut) -> None:
        if self._ended is not None or not self.wants(event):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._ended = "the client fell behind; reconnect with Last-Event-ID to resume"

    def end(self, reason: str) -> None:
        if self._ended is None:
            self._ended = reason
        with suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    async def next(self, idle_s: float) -> EventOut | None:
        """The next live event, or ``None`` after ``idle_s`` seconds of quiet."""
        if self._ended is not None and self._queue.empty():
            raise StreamClosedError(self._ended)
        try:
            event = await asyncio.wait_for(self._queue.get(), idle_s)
        except TimeoutError:
            return None
        if event is None:
            raise StreamClosedError(self._ended or "the stream ended")
        return event


class EventHub:
    """Polls ``events`` and delivers each new row, in id order, to listeners and subscribers."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        poll_interval_s: float,
        gap_grace_s: float,
        listeners: Sequence[EventListener] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._poll_interval = poll_interval_s
        self._gap_grace = gap_grace_s
        self._listeners = tuple(listeners)
        self._clock = clock
        self._position: int | None = None
        self._gap_since: dict[int, float] = {}
        self._announced: set[int] = set()
        self._subscribers: set[Subscription] = set()
        self._closed = False

    @property
    def position(self) -> int | None:
        """The last event id delivered (``None`` until the table could first be read)."""
        return self._position

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(
        self, *, symbol: str | None = None, types: Collection[str] | None = None
    ) -> Subscription:
        subscription = Subscription(start=self._position, symbol=symbol, types=types)
        if self._closed:
            subscription.end("the server is shutting down")
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def close(self) -> None:
        """End every stream (on shutdown, so the server need not wait for clients to leave)."""
        self._closed = True
        for subscription in self._subscribers:
            subscription.end("the server is shutting down")

    async def run(self) -> None:
        """Poll until cancelled; a database outage is logged once and retried with backoff."""
        failures = 0
        while True:
            try:
                await self.poll()
            except (SQLAlchemyError, OSError) as exc:
                failures += 1
                if failures == 1:
                    logger.warning("cannot read events (will retry): %s", first_line(exc))
                await asyncio.sleep(min(_MAX_BACKOFF_S, self._poll_interval * 2**failures))
                continue
            if failures:
                logger.info("reading events again after %d failed attempts", failures)
                failures = 0
            await asyncio.sleep(self._poll_interval)

    async def poll(self) -> int:
        """Read what is new once; returns how many events were delivered."""
        async with self._sessions() as session:
            repository = EventRepository(session)
            if self._position is None:
                self._position = await repository.latest_id()
                return 0
            rows = await repository.since(self._position, limit=PAGE_SIZE)
            events = [event_out(row) for row in rows]
        self._announce(events)
        return self._deliver_in_order(events)

    def _announce(self, events: Sequence[EventOut]) -> None:
        for event in events:
            if event.id in self._announced:
                continue
            self._announced.add(event.id)
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    logger.exception("event listener failed on event %d", event.id)

    def _deliver_in_order(self, events: Sequence[EventOut]) -> int:
        position = self._position if self._position is not None else 0
        delivered = 0
        now = self._clock()
        for event in events:
            if event.id <= position:
                continue
            expected = position + 1
            if event.id > expected:
                noticed = self._gap_since.setdefault(expected, now)
                if now - noticed < self._gap_grace:
                    break  # wait for the hole to fill
                logger.info(
                    "skipping event ids %d..%d: still missing after %.1f s (rolled back)",
                    expected,
                    event.id - 1,
                    now - noticed,
                )
            for subscription in tuple(self._subscribers):
                subscription.offer(event)
            position = event.id
            delivered += 1
        self._position = position
        self._gap_since = {start: at for start, at in self._gap_since.items() if start > position}
        self._announced = {event_id for event_id in self._announced if event_id > position}
        return delivered


async def replay(
    sessions: async_sessionmaker[AsyncSession],
    *,
    after: int,
    until: int | None,
    symbol: str | None,
    types: Collection[str] | None,
) -> AsyncIterator[EventOut]:
    """Stored events with ``after < id <= until`` (no upper bound when ``until`` is None), in id
    order, a page at a time so a long replay never holds a connection or much memory."""
    wanted = frozenset(types) if types else None
    cursor = after
    while until is None or cursor < until:
        async with sessions() as session:
            rows = await EventRepository(session).since(cursor, limit=PAGE_SIZE, symbol=symbol)
            page = [event_out(row) for row in rows]
        for event in page:
            if until is not None and event.id > until:
                return
            cursor = event.id
            if wanted is None or event.type in wanted:
                yield event
        if len(page) < PAGE_SIZE:
            return
