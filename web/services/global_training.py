"""Queueing the global retrain (``retrain_global``) from the API: one at a time.

The job trains for the whole watchlist, for hours at scale; a second one queued behind it would
train the same models again from the same bars, so a request while one is queued or running is
refused (409, naming that job) instead of piling up. The check and the enqueue are two
transactions: two requests at the same instant may both pass, and the task's cluster-wide limit
of one running job (``TaskLimits.retrain_global``) still runs them one after the other.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import JobRequest
from db.kinds import JobKind
from db.models import JobStatus
from db.repositories import JobRepository
from web.errors import JobAlreadyPendingError
from web.schemas.global_training import GlobalTrainAccepted, GlobalTrainRequest
from web.services.jobs import JobService


class GlobalTrainingService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], jobs: JobService) -> None:
        self._sessions = sessions
        self._jobs = jobs

    async def request(self, data: GlobalTrainRequest) -> GlobalTrainAccepted:
        """Queue one global retrain with ``data``'s settings; raise
        :class:`JobAlreadyPendingError` while another is queued or running."""
        await self._jobs.ensure_can_enqueue([JobKind.RETRAIN_GLOBAL])
        async with self._sessions() as session:
            pending = await JobRepository(session).pending_of_kind(JobKind.RETRAIN_GLOBAL.value)
        if pending is not None:
            raise JobAlreadyPendingError(
                JobKind.RETRAIN_GLOBAL.value, pending.id, JobStatus(pending.status).value
            )
        [job] = await self._jobs.enqueue([JobRequest.retrain_global(data.params())])
        return GlobalTrainAccepted(job=job)
