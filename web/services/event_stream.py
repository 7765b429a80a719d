"""The server-sent-event stream of one client: a replay of the stored events after its resume
point, then the live ones, without a gap or a duplicate at the seam (live events the hub delivers
while the replay runs are skipped by id), with a comment line every ``heartbeat_s`` so proxies
keep an idle stream open."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection

import msgspec
from litestar.response import ServerSentEventMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories import EventRepository
from web.events import EventHub, StreamClosedError, Subscription, replay
from web.schemas.events import EventOut

#: Reconnect delay suggested to clients, in milliseconds.
RETRY_MS = 3000
_ENCODER = msgspec.json.Encoder()


class EventStreamService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], hub: EventHub, *, heartbeat_s: float
    ) -> None:
        self._sessions = sessions
        self._hub = hub
        self._heartbeat = heartbeat_s

    async def messages(
        self, resume: int | None, *, symbol: str | None, types: Collection[str] | None
    ) -> AsyncIterator[ServerSentEventMessage]:
        """The client's stream: replay after ``resume`` (when given), then live events."""
        # Subscribed when the stream starts, not when it is built: a generator that never starts
        # never runs its ``finally``, and would leave the subscription behind.
        subscription = self._hub.subscribe(symbol=symbol, types=types)
        try:
            yield ServerSentEventMessage(comment="stockcast events", data=None, retry=RETRY_MS)
            last = resume
            if resume is not None:
                newest = await self._newest_id(subscription)
                if resume > newest:
                    # The client remembers an id this database never reached (it was reset or
                    # restored): replaying "after" it would be silent forever. Tell the client to
                    # reload, move its Last-Event-ID back to the newest id, and go on live.
                    yield _reset(resume, newest)
                    resume = last = newest
                async for event in self._replay(resume, subscription):
                    yield _message(event)
                    last = event.id
                if subscription.start is not None and (last is None or last < subscription.start):
                    last = subscription.start
            async for message in self._live(subscription, last):
                yield message
        finally:
            self._hub.unsubscribe(subscription)

    async def _newest_id(self, subscription: Subscription) -> int:
        if subscription.start is not None:
            return subscription.start
        async with self._sessions() as session:
            return await EventRepository(session).latest_id() or 0

    def _replay(self, resume: int, subscription: Subscription) -> AsyncIterator[EventOut]:
        return replay(
            self._sessions,
            after=resume,
            until=subscription.start,
            symbol=subscription.symbol,
            types=subscription.types,
        )

    async def _live(
        self, subscription: Subscription, last: int | None
    ) -> AsyncIterator[ServerSentEventMessage]:
        while True:
            try:
                live = await subscription.next(idle_s=self._heartbeat)
            except StreamClosedError as closed:
                yield ServerSentEventMessage(comment=closed.reason, data=None)
                return
            if live is None:
                yield ServerSentEventMessage(comment="keep-alive", data=None)
                continue
            if last is not None and live.id <= last:
                continue
            yield _message(live)
            last = live.id


#: The SSE event type that tells a client its resume point is gone: reload, then follow live.
RESET_EVENT = "reset"


def _reset(requested: int, newest: int) -> ServerSentEventMessage:
    detail = {
        "reason": f"event {requested} does not exist yet; the newest is {newest}: reload the state",
        "requested": requested,
        "newest": newest,
    }
    return ServerSentEventMessage(
        id=newest, event=RESET_EVENT, data=_ENCODER.encode(detail).decode()
    )


def _message(event: EventOut) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        id=event.id, event=event.type, data=_ENCODER.encode(event).decode()
    )
