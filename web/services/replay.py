"""The market replay's state, read from its newest ``replay.advanced`` event.

The API and the scheduler meet only through the database: the scheduler's replay task records
each move of the simulated clock as an event, and this is where the API reads it back.
"""

from __future__ import annotations

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import ReplayAdvanced
from db.kinds import EventType
from db.repositories import EventRepository
from web.schemas.replay import ReplayOut

INACTIVE = ReplayOut(active=False)


class ReplayService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def state(self) -> ReplayOut:
        async with self._sessions() as session:
            event = await EventRepository(session).latest_of_type(EventType.REPLAY_ADVANCED.value)
        if event is None:
            return INACTIVE
        try:
            advanced = msgspec.convert(event.payload, ReplayAdvanced)
        except msgspec.ValidationError:
            return INACTIVE
        return replay_out(advanced)


def replay_out(advanced: ReplayAdvanced) -> ReplayOut:
    prefix = "replay finished" if advanced.finished else "replay"
    return ReplayOut(
        active=True,
        session=advanced.session,
        label=f"{prefix}: {advanced.session.isoformat()}",
        position=advanced.index + 1,
        total=advanced.total,
        first=advanced.first,
        last=advanced.last,
        finished=advanced.finished,
    )
