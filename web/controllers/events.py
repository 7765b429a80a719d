"""``GET /events``: the events table as a server-sent-event stream, resumable by id.

A client that reconnects sends ``Last-Event-ID`` (browsers do it themselves) or ``?after=``; the
stream first replays the stored events after that id, then continues with live ones, without a gap
or a duplicate at the seam (live events the hub delivers while the replay runs are skipped by id).
Without either, the stream starts with what happens next. A comment line every
``sse_heartbeat_s`` keeps proxies from closing an idle stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from db.kinds import EventType
from forecasting.symbols import normalize_symbol
from web.dependencies import provide_resources, provider
from web.errors import InvalidRequestError
from web.events import StreamClosedError, replay
from web.schemas.events import EventOut
from web.schemas.fields import SYMBOL_INPUT_PATTERN
from web.schemas.problems import READ_ERRORS, problem_responses
from web.state import AppResources

#: Reconnect delay suggested to clients, in milliseconds.
RETRY_MS = 3000
_ENCODER = msgspec.json.Encoder()


class EventsController(Controller):
    tags = ["events"]  # noqa: RUF012 - Litestar reads these class attributes
    dependencies = {"resources": provider(provide_resources)}  # noqa: RUF012

    @get(
        "/events",
        summary="Live events (server-sent events)",
        description=(
            "A `text/event-stream` of the service's events (`forecast.ready`, `model.promoted`, "
            "`job.failed`, ...): each message has `id:` (the event id), `event:` (its type) and "
            "`data:` (the event as JSON: id, type, symbol, payload, created_at). Resume with "
            "`Last-Event-ID` or `?after=`; filter with `symbol` and `types`. Comment lines are "
            "heart-beats."
        ),
        responses={
            200: ResponseSpec(
                data_container=str,
                media_type="text/event-stream",
                description="An endless stream of events",
                generate_examples=False,
            ),
            **problem_responses(*READ_ERRORS),
        },
    )
    async def stream(
        self,
        *,
        resources: NamedDependency[AppResources],
        after: Annotated[
            int | None,
            QueryParameter(
                ge=0,
                le=2**62,
                description="Replay stored events after this id first.",
                required=False,
            ),
        ] = None,
        last_event_id: Annotated[
            str | None,
            HeaderParameter(
                name="Last-Event-ID",
                max_length=20,
                description="Sent by reconnecting EventSource clients; same as `after`.",
                required=False,
            ),
        ] = None,
        symbol: Annotated[
            str | None,
            QueryParameter(pattern=SYMBOL_INPUT_PATTERN, max_length=16, required=False),
        ] = None,
        types: Annotated[
            list[EventType] | None,
            QueryParameter(
                description="Only these event types (repeat the parameter).", required=False
            ),
        ] = None,
    ) -> ServerSentEvent:
        resume = _resume_point(after, last_event_id)
        wanted_symbol = normalize_symbol(symbol) if symbol is not None else None
        wanted_types = {event_type.value for event_type in types} if types else None
        return ServerSentEvent(
            _messages(resources, resume, symbol=wanted_symbol, types=wanted_types),
            headers={"Cache-Control": "no-store"},
        )


def _resume_point(after: int | None, last_event_id: str | None) -> int | None:
    if after is not None:
        return after
    if last_event_id is None or not last_event_id.strip():
        return None
    text = last_event_id.strip()
    if not text.isdigit():
        raise InvalidRequestError("Last-Event-ID", f"expected an event id, got {text!r}")
    return int(text)


async def _messages(
    resources: AppResources,
    resume: int | None,
    *,
    symbol: str | None,
    types: set[str] | None,
) -> AsyncIterator[ServerSentEventMessage]:
    hub = resources.events
    heartbeat = resources.config.sse_heartbeat_s
    last = resume
    # Subscribed when the stream starts, not in the handler: a generator that never starts never
    # runs its ``finally``, and would leave the subscription behind.
    subscription = hub.subscribe(symbol=symbol, types=types)
    try:
        yield ServerSentEventMessage(comment="stockcast events", data=None, retry=RETRY_MS)
        if resume is not None:
            async for event in replay(
                resources.sessions,
                after=resume,
                until=subscription.start,
                symbol=subscription.symbol,
                types=subscription.types,
            ):
                yield _message(event)
                last = event.id
            if subscription.start is not None and (last is None or last < subscription.start):
                last = subscription.start
        while True:
            try:
                live = await subscription.next(idle_s=heartbeat)
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
    finally:
        hub.unsubscribe(subscription)


def _message(event: EventOut) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        id=event.id, event=event.type, data=_ENCODER.encode(event).decode()
    )
