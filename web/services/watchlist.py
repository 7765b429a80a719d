"""The watchlist: registering, changing and removing symbols, and the jobs each change starts.

Registering a symbol writes its row and a ``symbol.added`` event in one transaction, then enqueues
``sync_schedules`` (its ``ingest:SYM`` / ``retrain:SYM`` schedules), an ``ingest`` (the backfill)
and the first ``retrain`` (``{"initial": true}``: the short first training). The symbol's exchange
is the one the request names or the one its ticker names (:mod:`web.services.listings`); changing
it re-registers the schedules on the new exchange's calendar. Removing one stops
watching it (``sync_schedules`` drops its schedules) and keeps its prices, models and forecasts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import JobRequest, RetrainParams, SymbolAdded, SymbolRemoved, SymbolUpdated
from db.kinds import JobKind
from db.models import RetrainCadence, WatchedSymbol
from db.repositories import (
    EventRepository,
    PriceRepository,
    SymbolRepository,
    SymbolsAlreadyWatchedError,
    SymbolsNotFoundError,
)
from web.errors import InvalidRequestError
from web.schemas.symbols import (
    BATCH_LIMIT,
    SymbolBatchChange,
    SymbolChange,
    SymbolCreate,
    SymbolOut,
    SymbolUpdate,
    symbol_out,
)
from web.services.jobs import JobService
from web.services.listings import listing_for, listing_warnings, listings_for, resolve_listing
from web.services.settings_jobs import SHAPE_SETTINGS, jobs_for_settings
from web.services.symbol_check import ensure_all_available

if TYPE_CHECKING:
    from forecasting.listings import Listing

REGISTRATION_JOBS = (JobKind.SYNC_SCHEDULES, JobKind.INGEST, JobKind.RETRAIN)
#: A bulk registration's jobs: the schedule sync, and one refresh per exchange, whose batches
#: backfill, forecast and queue the first trainings.
BULK_REGISTRATION_JOBS = (JobKind.SYNC_SCHEDULES, JobKind.REFRESH)


class WatchlistService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        jobs: JobService,
        *,
        default_horizon: int,
        default_lookback: int,
        check_symbol: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """``check_symbol`` refuses a symbol the price source lacks (web.services.symbol_check)."""
        self._check_symbol = check_symbol
        self._sessions = sessions
        self._jobs = jobs
        self._default_horizon = default_horizon
        self._default_lookback = default_lookback

    async def register(self, data: SymbolCreate) -> SymbolChange:
        symbol = data.symbol
        # First, so an unknown exchange or suffix is a 422 that changes nothing.
        listing = await listing_for(symbol, data.exchange)
        await self._jobs.ensure_can_enqueue(REGISTRATION_JOBS)
        if self._check_symbol is not None:
            await self._check_symbol(symbol)
        async with self._sessions() as session, session.begin():
            row = await SymbolRepository(session).add(
                symbol=symbol,
                exchange=listing.exchange,
                horizon=data.horizon or self._default_horizon,
                lookback=data.lookback or self._default_lookback,
                retrain_cadence=data.retrain_cadence or RetrainCadence.WEEKLY,
            )
            await EventRepository(session).append(_settings(SymbolAdded, row), symbol=symbol)
            out = symbol_out(row, listing)
        jobs = await self._jobs.enqueue(
            [
                JobRequest.sync_schedules(symbol),
                JobRequest.for_symbol(JobKind.INGEST, symbol),
                JobRequest.retrain(symbol, RetrainParams(initial=True)),
            ]
        )
        return SymbolChange(symbol=out, jobs=jobs)

    async def register_many(self, batch: Sequence[SymbolCreate]) -> SymbolBatchChange:
        """Watch every symbol of ``batch`` or none: each is checked as :meth:`register` checks
        one, all rows and events are written in one transaction, and one ``sync_schedules``
        serves them all (a sync reads the whole watchlist, so one per symbol would cost N²).

        Their backfill, first forecast and first training go through one ``refresh`` job per
        exchange: it splits the symbols into ``refresh_batch`` jobs that fetch, store and
        forecast a batch at a time (three jobs per symbol would make a thousand symbols wait
        minutes for their first forecast), and queue each symbol's first training."""
        if not 1 <= len(batch) <= BATCH_LIMIT:
            raise InvalidRequestError("body", f"give 1 to {BATCH_LIMIT} symbols (got {len(batch)})")
        names = [item.symbol for item in batch]
        repeated = sorted(name for name, count in Counter(names).items() if count > 1)
        if repeated:
            raise InvalidRequestError("body", f"symbols given twice: {', '.join(repeated)}")
        listings = await anyio.to_thread.run_sync(_listings_of, batch)
        await self._jobs.ensure_can_enqueue(BULK_REGISTRATION_JOBS)
        if self._check_symbol is not None:
            await ensure_all_available(self._check_symbol, names)
        async with self._sessions() as session, session.begin():
            symbols = SymbolRepository(session)
            existing = await symbols.find_many(names)
            watched = sorted(name for name, row in existing.items() if row.active)
            if watched:
                raise SymbolsAlreadyWatchedError(watched)
            events = EventRepository(session)
            out = []
            for item, listing in zip(batch, listings, strict=True):
                row = await symbols.add(
                    symbol=item.symbol,
                    exchange=listing.exchange,
                    horizon=item.horizon or self._default_horizon,
                    lookback=item.lookback or self._default_lookback,
                    retrain_cadence=item.retrain_cadence or RetrainCadence.WEEKLY,
                )
                await events.append(_settings(SymbolAdded, row), symbol=item.symbol)
                out.append(symbol_out(row, listing))
        by_exchange: dict[str, list[str]] = {}
        for symbol in out:
            by_exchange.setdefault(symbol.exchange, []).append(symbol.symbol)
        requests = [JobRequest.sync_schedules()] + [
            JobRequest.refresh(exchange, sorted(symbols))
            for exchange, symbols in sorted(by_exchange.items())
        ]
        return SymbolBatchChange(symbols=out, jobs=await self._jobs.enqueue(requests))

    async def remove_many(self, names: Sequence[str]) -> SymbolBatchChange:
        """Stop watching every one of ``names`` or none (unknown ones: a 404 naming them all),
        with one ``sync_schedules``."""
        await self._jobs.ensure_can_enqueue([JobKind.SYNC_SCHEDULES])
        unique = list(dict.fromkeys(names))
        async with self._sessions() as session, session.begin():
            symbols = SymbolRepository(session)
            existing = await symbols.find_many(unique)
            missing = [name for name in unique if name not in existing or not existing[name].active]
            if missing:
                raise SymbolsNotFoundError(missing)
            events = EventRepository(session)
            rows = []
            for name in unique:
                rows.append(await symbols.deactivate(name))
                await events.append(SymbolRemoved(), symbol=name)
            out = await _payloads(session, rows)
        jobs = await self._jobs.enqueue([JobRequest.sync_schedules()])
        return SymbolBatchChange(symbols=out, jobs=jobs)

    async def list(
        self, *, include_removed: bool, after: str | None = None, limit: int | None = None
    ) -> list[SymbolOut]:
        async with self._sessions() as session:
            rows = await SymbolRepository(session).list(
                active=None if include_removed else True, after=after, limit=limit
            )
            return await _payloads(session, rows)

    async def get(self, symbol: str) -> SymbolOut:
        async with self._sessions() as session:
            # A removed symbol is gone from the watchlist: 404, as after any DELETE (its prices,
            # models and forecasts stay readable; GET /symbols?include_removed=true lists it).
            row = await SymbolRepository(session).get(symbol)
            [out] = await _payloads(session, [row])
            return out

    async def update(self, name: str, data: SymbolUpdate) -> SymbolChange:
        changes = data.changes()
        if "exchange" in changes:
            # Validated (a 422 changes nothing) and canonical: ``nyse`` is stored as XNYS.
            listing = await listing_for(name, str(changes["exchange"]))
            changes["exchange"] = listing.exchange
        async with self._sessions() as session:
            current = await SymbolRepository(session).get(name)
            has_prices = await PriceRepository(session).last_date(name) is not None
        moved = changes.get("exchange", current.exchange) != current.exchange
        before = {"horizon": current.horizon, "lookback": current.lookback}
        # A new exchange moves the ingest schedule to its closes, and the stored forecast is
        # dated again on its sessions (when there are prices to forecast from).
        requests = []
        if "retrain_cadence" in changes or moved:
            requests.append(JobRequest.sync_schedules(name))
        if moved and has_prices:
            requests.append(JobRequest.for_symbol(JobKind.FORECAST, name))
        needed = [request.kind for request in requests]
        if changes.keys() & set(SHAPE_SETTINGS):
            # A new horizon or lookback: a forecast, perhaps a retrain (web.services.settings_jobs).
            needed += [JobKind.FORECAST, JobKind.RETRAIN]
        if needed:
            await self._jobs.ensure_can_enqueue(needed)
        async with self._sessions() as session, session.begin():
            row = await SymbolRepository(session).update(name, **changes)
            await EventRepository(session).append(_settings(SymbolUpdated, row), symbol=name)
            [out] = await _payloads(session, [row])
        queued = {request.kind for request in requests}
        requests += [
            request
            for request in await jobs_for_settings(
                self._sessions,
                name,
                before=before,
                after={"horizon": out.horizon, "lookback": out.lookback},
            )
            if request.kind not in queued
        ]
        jobs = await self._jobs.enqueue(requests) if requests else []
        return SymbolChange(symbol=out, jobs=jobs)

    async def remove(self, name: str) -> SymbolChange:
        await self._jobs.ensure_can_enqueue([JobKind.SYNC_SCHEDULES])
        async with self._sessions() as session, session.begin():
            row = await SymbolRepository(session).deactivate(name)
            await EventRepository(session).append(SymbolRemoved(), symbol=name)
            [out] = await _payloads(session, [row])
        jobs = await self._jobs.enqueue([JobRequest.sync_schedules(name)])
        return SymbolChange(symbol=out, jobs=jobs)


def _listings_of(batch: Sequence[SymbolCreate]) -> list[Listing]:
    """Each item's listing (in a worker thread); a 422 names the item that failed."""
    listings = []
    for index, item in enumerate(batch):
        try:
            listings.append(resolve_listing(item.symbol, item.exchange))
        except InvalidRequestError as exc:
            raise InvalidRequestError(f"[{index}].{exc.field_name}", exc.problem) from exc
    return listings


def _settings(event: type[SymbolAdded], row: WatchedSymbol) -> SymbolAdded:
    """``symbol.added`` or ``symbol.updated`` (one shape) with the row's settings."""
    return event(
        horizon=row.horizon,
        lookback=row.lookback,
        retrain_cadence=RetrainCadence(row.retrain_cadence).value,
        exchange=row.exchange,
    )


async def _payloads(session: AsyncSession, rows: Sequence[WatchedSymbol]) -> list[SymbolOut]:
    """The payloads of ``rows``, with each one's listing and the source's last warnings."""
    exchanges = {row.symbol: row.exchange for row in rows}
    listings = await listings_for(exchanges.items())
    warnings = await listing_warnings(session, exchanges)
    return [symbol_out(row, listings.get(row.symbol), warnings.get(row.symbol)) for row in rows]
