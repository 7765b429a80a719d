"""Queries on the event log that feeds the SSE stream and cache invalidation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.kinds import EventType
from db.models import Event


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(
        self,
        event_type: EventType,
        *,
        symbol: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> Event:
        row = Event(type=event_type.value, symbol=symbol, payload=payload or {})
        self._session.add(row)
        await self._session.flush()
        return row

    async def since(
        self, last_id: int, *, limit: int = 100, symbol: str | None = None
    ) -> Sequence[Event]:
        """Events with an id greater than ``last_id``, oldest first (SSE resume, cache tailing)."""
        query = select(Event).where(Event.id > last_id).order_by(Event.id).limit(limit)
        if symbol is not None:
            query = query.where(Event.symbol == symbol)
        return (await self._session.execute(query)).scalars().all()

    async def latest_id(self) -> int:
        result = await self._session.execute(select(func.max(Event.id)))
        return int(result.scalar_one_or_none() or 0)

    async def recent(self, *, symbol: str | None = None, limit: int = 50) -> Sequence[Event]:
        """The newest events, newest first."""
        query = select(Event).order_by(Event.id.desc()).limit(limit)
        if symbol is not None:
            query = query.where(Event.symbol == symbol)
        return (await self._session.execute(query)).scalars().all()
