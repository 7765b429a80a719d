"""Reading stored forecasts: the latest one (through the cache), and the history with actuals.

Forecast reads go by the forecasts themselves, not by the watchlist: a symbol removed from the
watchlist keeps its history readable, and a symbol trained on demand without being watched has
forecasts too. A symbol with no forecast is a 404 that says whether it is merely waiting for its
first one.
"""

from __future__ import annotations

import asyncio
from datetime import date

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ForecastRow
from db.repositories import (
    ForecastRepository,
    ModelVersionRepository,
    ServedPlanRepository,
    SymbolRepository,
)
from web.cache import CachedResponse, ForecastCache
from web.errors import NoForecastError
from web.schemas.forecasts import (
    ForecastHistory,
    ForecastModel,
    ForecastRecord,
    LatestForecast,
    ServingInfo,
    finite_or_none,
    model_skill,
    serving_info,
    step_out,
)
from web.services.listings import listing_fields, stored_listing

_ENCODER = msgspec.json.Encoder()


class ForecastService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache: ForecastCache) -> None:
        self._sessions = sessions
        self._cache = cache
        self._fills: dict[str, asyncio.Future[CachedResponse]] = {}

    async def latest_response(self, symbol: str) -> CachedResponse:
        """The encoded latest forecast of ``symbol`` (already normalised), from the cache when
        it is there; concurrent misses for one symbol share a single database read."""
        while True:
            cached = self._cache.get(symbol)
            if cached is not None:
                return cached
            pending = self._fills.get(symbol)
            if pending is None:
                return await self._fill(symbol)
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this request was cancelled, not the fill it waited for
                # The request doing the fill went away; try again (possibly filling ourselves).

    async def _fill(self, symbol: str) -> CachedResponse:
        future: asyncio.Future[CachedResponse] = asyncio.get_running_loop().create_future()
        self._fills[symbol] = future
        try:
            generation = self._cache.generation(symbol)
            forecast = await self.latest(symbol)
            entry = self._cache.put(symbol, _ENCODER.encode(forecast), generation=generation)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else has to
            raise
        else:
            future.set_result(entry)
            return entry
        finally:
            self._fills.pop(symbol, None)

    async def latest(self, symbol: str) -> LatestForecast:
        async with self._sessions() as session:
            rows = await ForecastRepository(session).latest(symbol)
            if not rows:
                known = await SymbolRepository(session).find(symbol) is not None
                raise NoForecastError(symbol, known=known)
            model = await _forecast_model(session, rows[0])
            listing = await stored_listing(session, symbol)
            serving = await _serving(session, rows[0].served_plan_id)
        first = rows[0]
        return LatestForecast(
            symbol=symbol,
            issued_at=first.issued_at,
            last_observed_date=first.last_observed_date,
            last_close=first.last_close,
            horizon=len(rows),
            model=model,
            steps=[step_out(row) for row in rows],
            **listing_fields(listing),
            serving=serving,
        )

    async def history(
        self, symbol: str, *, start: date | None, end: date | None, limit: int
    ) -> ForecastHistory:
        async with self._sessions() as session:
            rows = await ForecastRepository(session).history(
                symbol, start=start, end=end, limit=limit + 1
            )
            if not rows and await SymbolRepository(session).find(symbol) is None:
                raise NoForecastError(symbol, known=False)
            listing = await stored_listing(session, symbol)
        records = [_record(row) for row in rows[:limit]]
        return ForecastHistory(
            symbol=symbol,
            start=start,
            end=end,
            count=len(records),
            truncated=len(rows) > limit,
            forecasts=records,
            **listing_fields(listing),
        )


async def _serving(session: AsyncSession, plan_id: int | None) -> ServingInfo | None:
    """The plan that issued the forecast, as it stands now (its calibration keeps learning)."""
    if plan_id is None:
        return None
    plans = ServedPlanRepository(session)
    plan = await plans.get(plan_id)
    if plan is None:
        return None
    live = await plans.live_coverage(plan.id)
    return serving_info(
        plan,
        live_matured=live.matured,
        live_within_80=live.within_80,
        live_within_95=live.within_95,
    )


async def _forecast_model(session: AsyncSession, row: ForecastRow) -> ForecastModel:
    if row.model_version_id is None:
        return ForecastModel(
            kind=row.model_kind,
            version_id=None,
            model_name=None,
            status=None,
            skill=model_skill(row.model_kind, None),
        )
    version = await ModelVersionRepository(session).get(row.model_version_id)
    return ForecastModel(
        kind=row.model_kind,
        version_id=version.id,
        model_name=version.model_name,
        status=str(version.status),
        skill=model_skill(row.model_kind, version.metrics),
    )


def _within(actual: float | None, lower: float, upper: float) -> bool | None:
    return None if actual is None else lower <= actual <= upper


def _record(row: ForecastRow) -> ForecastRecord:
    actual = row.actual
    return ForecastRecord(
        issued_at=row.issued_at,
        model_kind=row.model_kind,
        model_version_id=row.model_version_id,
        step=row.step,
        target_date=row.target_date,
        last_observed_date=row.last_observed_date,
        last_close=row.last_close,
        point=row.point,
        lower_80=finite_or_none(row.lower_80),
        upper_80=finite_or_none(row.upper_80),
        lower_95=finite_or_none(row.lower_95),
        upper_95=finite_or_none(row.upper_95),
        naive=row.naive,
        actual=actual,
        error=row.error,
        naive_error=None if actual is None else actual - row.naive,
        within_80=_within(actual, row.lower_80, row.upper_80),
        within_95=_within(actual, row.lower_95, row.upper_95),
    )
