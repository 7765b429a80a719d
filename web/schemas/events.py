"""The event payload streamed over server-sent events (the ``data:`` line of each message)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from db.models import Event


class EventOut(msgspec.Struct, frozen=True, kw_only=True):
    """Something that happened in the service; ``id`` is also the SSE id (``Last-Event-ID``)."""

    id: int
    type: str
    symbol: str | None
    payload: dict[str, Any]
    created_at: datetime


def event_out(row: Event) -> EventOut:
    return EventOut(
        id=int(row.id),
        type=row.type,
        symbol=row.symbol,
        payload=dict(row.payload or {}),
        created_at=row.created_at,
    )
