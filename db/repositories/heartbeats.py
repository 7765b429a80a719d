"""Scheduler heartbeats: a node records that its loop still turns; health checks read it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import SchedulerHeartbeat


class HeartbeatRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def beat(self, *, node: str, host: str, pid: int, role: str, at: datetime) -> None:
        """Record a beat of ``node`` at ``at`` (its row is made on the first beat). One node
        writes only its own row, so read-then-write needs no lock."""
        row = await self._session.get(SchedulerHeartbeat, node)
        if row is None:
            self._session.add(
                SchedulerHeartbeat(
                    node=node, host=host, pid=pid, role=role, started_at=at, beat_at=at
                )
            )
        else:
            row.beat_at = at
        await self._session.flush()

    async def latest(
        self, *, host: str | None = None, pid: int | None = None
    ) -> SchedulerHeartbeat | None:
        """The most recent beat (of the node on ``host`` with process ``pid``, when given)."""
        query = select(SchedulerHeartbeat).order_by(SchedulerHeartbeat.beat_at.desc()).limit(1)
        if host is not None:
            query = query.where(SchedulerHeartbeat.host == host)
        if pid is not None:
            query = query.where(SchedulerHeartbeat.pid == pid)
        return (await self._session.execute(query)).scalar_one_or_none()
