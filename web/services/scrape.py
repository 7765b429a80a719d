"""A Prometheus scrape: the process's own metrics, plus figures read from the database now (the
age of each symbol's latest forecast, jobs by status)."""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.base import utcnow
from db.repositories import ForecastRepository, JobRepository
from web.prometheus import ApiMetrics

logger = logging.getLogger(__name__)


class ScrapeService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], metrics: ApiMetrics) -> None:
        self._sessions = sessions
        self._metrics = metrics

    async def render(self) -> bytes:
        """The Prometheus text exposition; a database outage leaves only its figures stale."""
        try:
            async with self._sessions() as session:
                issued_at = await ForecastRepository(session).latest_issued_at()
                jobs = await JobRepository(session).count_by_status()
        except SQLAlchemyError as exc:
            # A scrape still reports the process's own figures when the database is down.
            logger.warning("metrics: cannot read the database: %s", exc)
        else:
            self._metrics.set_database_figures(
                now=utcnow(), issued_at=issued_at, jobs_by_status=jobs
            )
        return self._metrics.render()
