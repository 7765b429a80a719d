"""The watchlist: registering, changing and removing symbols, and the jobs each change starts.

Registering a symbol writes its row and a ``symbol.added`` event in one transaction, then enqueues
``sync_schedules`` (its ``ingest:SYM`` / ``retrain:SYM`` schedules), an ``ingest`` (the backfill)
and the first ``retrain`` (``{"initial": true}``: the short first training). Removing one stops
watching it (``sync_schedules`` drops its schedules) and keeps its prices, models and forecasts.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.kinds import EventType, JobKind
from db.models import RetrainCadence, WatchedSymbol
from db.repositories import EventRepository, SymbolRepository
from forecasting.symbols import normalize_symbol
from web.schemas.symbols import SymbolChange, SymbolCreate, SymbolOut, SymbolUpdate, symbol_out
from web.services.jobs import JobRequest, JobService

REGISTRATION_JOBS = (JobKind.SYNC_SCHEDULES, JobKind.INGEST, JobKind.RETRAIN)


class WatchlistService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        jobs: JobService,
        *,
        default_horizon: int,
        default_lookback: int,
    ) -> None:
        self._sessions = sessions
        self._jobs = jobs
        self._default_horizon = default_horizon
        self._default_lookback = default_lookback

    async def register(self, data: SymbolCreate) -> SymbolChange:
        symbol = normalize_symbol(data.symbol)
        await self._jobs.ensure_can_enqueue(REGISTRATION_JOBS)
        async with self._sessions() as session, session.begin():
            row = await SymbolRepository(session).add(
                symbol=symbol,
                horizon=data.horizon or self._default_horizon,
                lookback=data.lookback or self._default_lookback,
                retrain_cadence=data.retrain_cadence or RetrainCadence.WEEKLY,
            )
            await EventRepository(session).append(
                EventType.SYMBOL_ADDED, symbol=symbol, payload=_settings(row)
            )
            out = symbol_out(row)
        jobs = await self._jobs.enqueue(
            [
                JobRequest(kind=JobKind.SYNC_SCHEDULES, symbol=symbol),
                JobRequest(kind=JobKind.INGEST, symbol=symbol, kwargs={"symbol": symbol}),
                JobRequest(
                    kind=JobKind.RETRAIN,
                    symbol=symbol,
                    kwargs={"symbol": symbol, "params": {"initial": True}},
                ),
            ]
        )
        return SymbolChange(symbol=out, jobs=jobs)

    async def list(self, *, include_removed: bool) -> list[SymbolOut]:
        async with self._sessions() as session:
            rows = await SymbolRepository(session).list(active=None if include_removed else True)
            return [symbol_out(row) for row in rows]

    async def get(self, symbol: str) -> SymbolOut:
        async with self._sessions() as session:
            row = await SymbolRepository(session).get(normalize_symbol(symbol), active_only=False)
            return symbol_out(row)

    async def update(self, symbol: str, data: SymbolUpdate) -> SymbolChange:
        name = normalize_symbol(symbol)
        changes = data.changes()
        reschedule = "retrain_cadence" in changes
        if reschedule:
            await self._jobs.ensure_can_enqueue([JobKind.SYNC_SCHEDULES])
        async with self._sessions() as session, session.begin():
            row = await SymbolRepository(session).update(name, **changes)
            await EventRepository(session).append(
                EventType.SYMBOL_UPDATED, symbol=name, payload=_settings(row)
            )
            out = symbol_out(row)
        jobs = (
            await self._jobs.enqueue([JobRequest(kind=JobKind.SYNC_SCHEDULES, symbol=name)])
            if reschedule
            else []
        )
        return SymbolChange(symbol=out, jobs=jobs)

    async def remove(self, symbol: str) -> SymbolChange:
        name = normalize_symbol(symbol)
        await self._jobs.ensure_can_enqueue([JobKind.SYNC_SCHEDULES])
        async with self._sessions() as session, session.begin():
            row = await SymbolRepository(session).deactivate(name)
            await EventRepository(session).append(EventType.SYMBOL_REMOVED, symbol=name)
            out = symbol_out(row)
        jobs = await self._jobs.enqueue([JobRequest(kind=JobKind.SYNC_SCHEDULES, symbol=name)])
        return SymbolChange(symbol=out, jobs=jobs)


def _settings(row: WatchedSymbol) -> dict[str, object]:
    return {
        "horizon": row.horizon,
        "lookback": row.lookback,
        "retrain_cadence": RetrainCadence(row.retrain_cadence).value,
    }
