"""On-demand training: a ``retrain`` job on the scheduler's workers, never work in the API.

A symbol that is not on the watchlist may be trained, as the original service allowed: the job
trains and records a model version (and its forecast) for it, but the symbol is not added to the
watchlist, so nothing is scheduled for it afterwards. ``watched`` in the answer says which case
applied.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import JobRequest
from db.kinds import JobKind
from db.repositories import SymbolRepository
from web.schemas.ondemand import TrainAccepted, TrainRequest
from web.services.jobs import JobService
from web.services.listings import exchange_of_unwatched


class TrainingService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], jobs: JobService) -> None:
        self._sessions = sessions
        self._jobs = jobs

    async def request(self, data: TrainRequest) -> TrainAccepted:
        symbol = data.symbol
        await self._jobs.ensure_can_enqueue([JobKind.RETRAIN])
        async with self._sessions() as session:
            row = await SymbolRepository(session).find(symbol)
            watched = row is not None and row.active
        if row is None:
            # The job will fetch its prices on the exchange its ticker names: one it cannot name
            # (an unknown suffix) is refused here, not by a failed job later.
            exchange_of_unwatched(symbol)
        [job] = await self._jobs.enqueue([JobRequest.retrain(symbol, data.retrain_params())])
        return TrainAccepted(symbol=symbol, model_name=data.model_name, watched=watched, job=job)
