"""The forecast stage of a refresh batch: every symbol of the batch that is not yet forecast for
its last stored bar gets one forecast, written with bulk inserts and its ``forecast.ready`` event
in one transaction.

"Already forecast for the last bar" is the idempotency key: a batch that runs again (its node was
killed and the job re-enqueued, or its fan-out ran twice) skips the symbols a run before it
already forecast. The check and the insert happen under a lock on the batch's symbol rows
(``SELECT ... FOR UPDATE`` in symbol order on PostgreSQL; SQLite has a single writer), so two
runs of one batch at the same time cannot both forecast a symbol either.

Each served model is rebuilt from its artifact once per batch (:class:`NetworkCache`), and the
CPU work runs in one worker thread per batch, taking turns with the node's other batches (the
node's compute slot). A symbol whose forecast fails is reported in ``failures`` and never costs
the others theirs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from db.base import utcnow
from db.contracts import ForecastReady
from db.repositories import (
    BarRecord,
    EventRepository,
    ForecastRepository,
    NewForecast,
    PriceRepository,
    SymbolRepository,
)
from scheduler.forecast_job import (
    NetworkCache,
    Served,
    model_rows_needed,
    predict_served,
    served_many,
    step_records,
)

if TYPE_CHECKING:
    from datetime import datetime

    from anyio import CapacityLimiter
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class _Input:
    """What one symbol's forecast is made from."""

    symbol: str
    horizon: int
    exchange: str
    served: Served
    records: list[BarRecord]


@dataclass(kw_only=True)
class ForecastOutcome:
    """How the forecast stage went, symbol by symbol."""

    forecast: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


async def forecast_batch(
    sessions: async_sessionmaker[AsyncSession],
    symbols: Sequence[str],
    *,
    history: int,
    limiter: CapacityLimiter | None = None,
) -> ForecastOutcome:
    """Forecast every one of ``symbols`` (active, with bars) not yet forecast for its last bar;
    the CPU work runs in a worker thread holding a token of ``limiter`` (the node's compute
    slot) when one is given."""
    outcome = ForecastOutcome()
    inputs = await _load_inputs(sessions, symbols, history, outcome)
    if not inputs:
        return outcome
    made = await anyio.to_thread.run_sync(_predict_all, inputs, outcome.failures, limiter=limiter)
    issued_at = utcnow()
    forecasts = [_new_forecast(item, result, issued_at) for item, result in made]
    async with sessions.begin() as session:
        stored = await _store_unless_done(session, forecasts)
    outcome.forecast = sorted(stored)
    outcome.already += sorted({f.symbol for f in forecasts} - stored)
    return outcome


async def _load_inputs(
    sessions: async_sessionmaker[AsyncSession],
    symbols: Sequence[str],
    history: int,
    outcome: ForecastOutcome,
) -> list[_Input]:
    """The symbols to forecast with their served models and bars; symbols already forecast for
    their last bar go to ``outcome.already`` (checked again, under lock, when storing)."""
    async with sessions() as session:
        watched = await SymbolRepository(session).find_many(list(symbols))
        active = [s for s in symbols if s in watched and watched[s].active]
        served = await served_many(session, active)
        rows = max(
            (model_rows_needed(item.artifact, history) for item in served.values()), default=0
        )
        bars = await PriceRepository(session).load_recent(active, rows)
        lasts = [records[-1].date for records in bars.values() if records]
        forecasts = ForecastRepository(session)
        done = await forecasts.forecast_bars(list(bars), min(lasts)) if lasts else set()
    inputs: list[_Input] = []
    for symbol in active:
        records = bars.get(symbol)
        if not records:
            outcome.failures[symbol] = f"no prices stored for {symbol}"
            continue
        if (symbol, records[-1].date) in done:
            outcome.already.append(symbol)
            continue
        needed = model_rows_needed(served[symbol].artifact, history)
        inputs.append(
            _Input(
                symbol=symbol,
                horizon=watched[symbol].horizon,
                exchange=watched[symbol].exchange,
                served=served[symbol],
                records=records[-needed:],
            )
        )
    return inputs


_Made = tuple[_Input, tuple[Any, list[dict[str, Any]] | None]]


def _predict_all(inputs: list[_Input], failures: dict[str, str]) -> list[_Made]:
    """Every forecast (CPU work, in a worker thread); a symbol that fails is noted and skipped."""
    networks = NetworkCache()
    made: list[_Made] = []
    for item in inputs:
        try:
            result = predict_served(
                item.records, item.served, item.horizon, item.exchange, networks
            )
        except Exception as exc:  # one symbol's model or data: never the batch's
            logger.warning("%s: forecast failed: %s", item.symbol, exc)
            failures[item.symbol] = f"{type(exc).__name__}: {exc}"
            continue
        made.append((item, result))
    return made


def _new_forecast(item: _Input, result: Any, issued_at: datetime) -> NewForecast:
    forecast, calibration = result
    served = item.served
    if calibration is None and served.recipe is not None:
        served = Served()  # the plan could not serve (see the log): the naive baseline did
    return NewForecast(
        symbol=item.symbol,
        model_version_id=served.version_id,
        model_kind=forecast.model_kind,
        issued_at=issued_at,
        last_observed_date=forecast.last_observed_date,
        last_close=forecast.last_close,
        steps=step_records(forecast, calibration),
        served_plan_id=served.plan_id,
    )


async def _store_unless_done(session: AsyncSession, forecasts: list[NewForecast]) -> set[str]:
    """Store the forecasts of symbols still active and not yet forecast for that bar, with their
    ``forecast.ready`` events; returns the symbols stored."""
    if not forecasts:
        return set()
    locked = await SymbolRepository(session).lock_many([f.symbol for f in forecasts])
    since = min(f.last_observed_date for f in forecasts)
    done = await ForecastRepository(session).forecast_bars(list(locked), since)
    fresh = [
        f
        for f in forecasts
        if f.symbol in locked
        and locked[f.symbol].active
        and (f.symbol, f.last_observed_date) not in done
    ]
    await ForecastRepository(session).add_many(fresh)
    await EventRepository(session).append_many(
        (
            ForecastReady(
                issued_at=f.issued_at,
                model_kind=f.model_kind,
                model_version_id=f.model_version_id,
                steps=len(f.steps),
                last_observed_date=f.last_observed_date,
            ),
            f.symbol,
        )
        for f in fresh
    )
    return {f.symbol for f in fresh}
