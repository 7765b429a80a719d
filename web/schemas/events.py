"""The event payload streamed over server-sent events (the ``data:`` line of each message)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from db.kinds import EventType
from db.models import Event


class EventOut(msgspec.Struct, frozen=True, kw_only=True):
    """Something that happened in the service; ``id`` is also the SSE id (``Last-Event-ID``)."""

    id: int
    type: str
    symbol: str | None
    payload: dict[str, Any]
    created_at: datetime


class EventMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One message of the ``GET /events`` stream, as an SSE parser reads it: ``id`` is the event's
    id, ``event`` its type and ``data`` the event itself as JSON (an ``EventOut``; for ``reset``,
    the reason and the newest id). Comment lines (heart-beats) and the opening ``retry:`` are not
    messages."""

    id: Annotated[str, msgspec.Meta(pattern=r"^[0-9]+$")]
    event: Annotated[
        str,
        msgspec.Meta(
            description=(
                "The event's type, or `reset`: the resume point is gone (reload, then follow)."
            ),
            extra_json_schema={"extra": {"enum": [*(kind.value for kind in EventType), "reset"]}},
        ),
    ]
    data: Annotated[str, msgspec.Meta(min_length=2, description="The event, as JSON (EventOut).")]


def event_out(row: Event) -> EventOut:
    return EventOut(
        id=int(row.id),
        type=row.type,
        symbol=row.symbol,
        payload=dict(row.payload or {}),
        created_at=row.created_at,
    )
