"""``GET /events``: the events table as a server-sent-event stream, resumable by id.

A client that reconnects sends ``Last-Event-ID`` (browsers do it themselves) or ``?after=``; the
stream first replays the stored events after that id, then continues with live ones
(:class:`web.services.event_stream.EventStreamService`). Without either, the stream starts with
what happens next.
"""

from __future__ import annotations

import re
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import ClientException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent

from db.kinds import EventType
from web.controllers.params import SYMBOL_FILTER
from web.dependencies import provide_event_stream, provider
from web.schemas.events import EventMessage
from web.schemas.problems import READ_ERRORS, problem_responses
from web.services.event_stream import EventStreamService

#: The largest event id a client may resume from (the column is a 64-bit integer).
MAX_EVENT_ID = 2**62
#: What ``Last-Event-ID`` may hold: an event id (at most 18 digits, below ``MAX_EVENT_ID``), or
#: nothing (EventSource sends an empty one before it has seen an id).
LAST_EVENT_ID_PATTERN = r"^[0-9]{0,18}$"


class EventsController(Controller):
    tags = ["events"]  # noqa: RUF012 - Litestar reads these class attributes
    dependencies = {"stream": provider(provide_event_stream), **SYMBOL_FILTER}  # noqa: RUF012

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
                # OpenAPI 3.1: the schema of an event stream describes each of its messages.
                data_container=EventMessage,
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
        stream: NamedDependency[EventStreamService],
        after: Annotated[
            int | None,
            QueryParameter(
                ge=0,
                le=MAX_EVENT_ID,
                # Litestar drops a bound of 0 (falsy) from an optional parameter's schema.
                schema_extra={"minimum": 0},
                description="Replay stored events after this id first.",
                required=False,
            ),
        ] = None,
        # ``str`` with an empty default, not ``str | None``: a header is absent or a string,
        # and a schema that allowed null would invite clients (and fuzzers) to send "null".
        last_event_id: Annotated[
            str,
            HeaderParameter(
                name="Last-Event-ID",
                max_length=20,
                pattern=LAST_EVENT_ID_PATTERN,
                description="Sent by reconnecting EventSource clients; same as `after`.",
                required=False,
            ),
        ] = "",
        # Here, between the header and ``types``: where ``?symbol=`` is documented.
        symbol_filter: NamedDependency[str | None],
        types: Annotated[
            list[EventType] | None,
            QueryParameter(
                description="Only these event types (repeat the parameter).", required=False
            ),
        ] = None,
    ) -> ServerSentEvent:
        resume = _resume_point(after, last_event_id)
        wanted_types = {event_type.value for event_type in types} if types else None
        return ServerSentEvent(
            stream.messages(resume, symbol=symbol_filter, types=wanted_types),
            headers={"Cache-Control": "no-store"},
        )


def _resume_point(after: int | None, last_event_id: str) -> int | None:
    if after is not None:
        return after
    if not last_event_id:
        return None
    # The documented pattern (the HTTP server has stripped surrounding whitespace): ASCII digits
    # only, as ``"\xb2".isdigit()`` is true and ``int("\xb2")`` fails; empty before any id.
    if re.fullmatch(LAST_EVENT_ID_PATTERN, last_event_id) is None:
        # 400, not 422: the header is not a well-formed id at all (RFC 9110's "malformed").
        raise ClientException(
            detail=f"Last-Event-ID: expected an event id, got {last_event_id[:40]!r}"
        )
    return int(last_event_id) if last_event_id else None
