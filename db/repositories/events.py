"""Queries on the event log that feeds the SSE stream and cache invalidation."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.contracts import EventPayload, to_json
from db.kinds import EventType
from db.models import Event


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, payload: EventPayload, *, symbol: str | None = None) -> Event:
        """Store the event ``payload`` announces (its type is the payload's), about ``symbol``."""
        row = Event(type=payload.event_type.value, symbol=symbol, payload=to_json(payload))
        self._session.add(row)
        await self._session.flush()
        return row

    async def append_many(self, events: Iterable[tuple[EventPayload, str | None]]) -> int:
        """:meth:`append` of several (payload, symbol) pairs with one flush; returns how many."""
        rows = [
            Event(type=payload.event_type.value, symbol=symbol, payload=to_json(payload))
            for payload, symbol in events
        ]
        self._session.add_all(rows)
        await self._session.flush()
        return len(rows)

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

    async def latest_by_symbol(
        self, event_type: EventType, symbols: Collection[str]
    ) -> dict[str, Event]:
        """The newest event of ``event_type`` about each of ``symbols`` that has one."""
        if not symbols:
            return {}
        newest = (
            select(func.max(Event.id))
            .where(Event.type == event_type.value, Event.symbol.in_(list(symbols)))
            .group_by(Event.symbol)
        )
        query = select(Event).where(Event.id.in_(newest))
        rows = (await self._session.execute(query)).scalars().all()
        return {row.symbol: row for row in rows if row.symbol is not None}

    async def latest_of_type(self, event_type: str) -> Event | None:
        """The newest event of ``event_type`` (the market replay's position, for instance)."""
        query = select(Event).where(Event.type == event_type).order_by(Event.id.desc()).limit(1)
        return (await self._session.execute(query)).scalars().first()
