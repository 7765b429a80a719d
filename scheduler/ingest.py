"""The ingest job: fetch a symbol's new daily bars, validate them, upsert them, queue what follows.

Bars are adjusted for splits and dividends, so a split rescales the whole history at the source.
Each fetch therefore re-reads a few already-stored sessions; when they no longer match what is
stored, the whole history is fetched again instead of appending bars on a different scale.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, Final

import anyio
import pandas as pd

from db.kinds import EventType, JobKind
from db.repositories import (
    BarRecord,
    EventRepository,
    ForecastRepository,
    JobRepository,
    ModelVersionRepository,
    PriceRepository,
    SymbolRepository,
)
from forecasting.calendar import last_closed_session
from forecasting.sources import NoDataError, PriceSource
from scheduler.conversions import frame_to_records
from scheduler.enqueue import enqueue
from scheduler.runner import JobContext

logger = logging.getLogger(__name__)

#: Calendar days of already-stored history re-read by each incremental fetch.
OVERLAP_DAYS: Final = 10
#: Relative difference of a re-read close that means the source re-adjusted its history.
RESCALE_TOLERANCE: Final = 1e-6


def backfill_start(today: date, years: int) -> date:
    """The first day a symbol without stored bars is fetched from."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def history_rescaled(stored: dict[date, float], fetched: list[BarRecord]) -> bool:
    """Whether re-read sessions disagree with the stored closes (a split or dividend adjustment)."""
    for record in fetched:
        old = stored.get(record.date)
        if old is not None and abs(record.close - old) > RESCALE_TOLERANCE * max(abs(old), 1.0):
            return True
    return False


async def ingest_prices(context: JobContext) -> dict[str, Any]:
    runtime = context.runtime
    symbol = context.symbol
    if symbol is None:
        raise ValueError("ingest needs a symbol")
    config = runtime.config
    async with runtime.sessions() as session:
        watched = await SymbolRepository(session).find(symbol)
        last = await PriceRepository(session).last_date(symbol)
    if watched is None or not watched.active:
        return {"skipped": f"{symbol} is not on the watchlist"}

    end = last_closed_session(datetime.now(UTC), watched.exchange)
    fetch = partial(_fetch, runtime.source, symbol)
    records: list[BarRecord] = []
    full_refresh = False
    if last is None:
        start = backfill_start(end, config.backfill_years)
        records = await fetch(start, end, backfill=True)
    else:
        start = last - timedelta(days=OVERLAP_DAYS)
        records = await fetch(start, end, backfill=False)
        async with runtime.sessions() as session:
            stored = await PriceRepository(session).closes_on(
                symbol, [record.date for record in records if record.date <= last]
            )
        if history_rescaled(stored, records):
            logger.warning("%s: the source re-adjusted its history; fetching all of it", symbol)
            full_refresh = True
            records = await fetch(backfill_start(end, config.backfill_years), end, backfill=True)
        elif not any(record.date > last for record in records):
            records = []

    first_new = min((r.date for r in records), default=None)
    last_new = max((r.date for r in records), default=None)
    rows = await store_bars(context, symbol, records, full_refresh=full_refresh)
    enqueued = await _enqueue_follow_ups(context, symbol, new_rows=rows)
    return {
        "rows": rows,
        "first": first_new.isoformat() if first_new else None,
        "last": last_new.isoformat() if last_new else None,
        "full_refresh": full_refresh,
        "enqueued": enqueued,
    }


async def store_bars(
    context: JobContext, symbol: str, records: list[BarRecord], *, full_refresh: bool = False
) -> int:
    """Upsert ``records`` and announce them (``prices.ingested``) in one transaction."""
    if not records:
        return 0
    runtime = context.runtime
    async with runtime.sessions.begin() as session:
        rows = await PriceRepository(session).upsert(symbol, records)
        await EventRepository(session).append(
            EventType.PRICES_INGESTED,
            symbol=symbol,
            payload={
                "rows": rows,
                "first": min(r.date for r in records).isoformat(),
                "last": max(r.date for r in records).isoformat(),
                "full_refresh": full_refresh,
                "source": runtime.source.name,
                "job_id": context.job_id,
            },
        )
    return rows


async def fetch_history(
    context: JobContext, symbol: str, *, start: date | None, end: date | None, exchange: str
) -> int:
    """Fetch and store ``symbol``'s bars in [start, end] (default: the backfill window up to the
    last closed session). For on-demand training of a symbol that is not watched, whose bars no
    ingest schedule keeps; returns the rows stored."""
    last_session = last_closed_session(datetime.now(UTC), exchange)
    end = min(end, last_session) if end is not None else last_session
    start = start or backfill_start(end, context.runtime.config.backfill_years)
    records = await _fetch(context.runtime.source, symbol, start, end, backfill=True)
    return await store_bars(context, symbol, records)


async def _fetch(
    source: PriceSource, symbol: str, start: date, end: date, *, backfill: bool
) -> list[BarRecord]:
    """Fetch in a worker thread (yfinance and pandas parsing block); "nothing new" is no error
    for an incremental fetch, but a backfill that finds nothing is."""
    if start > end:
        return []
    try:
        # abandon_on_cancel: a job timeout must not wait for a hung HTTP call to return.
        frame: pd.DataFrame = await anyio.to_thread.run_sync(
            partial(source.fetch, symbol, start, end), abandon_on_cancel=True
        )
    except NoDataError:
        if backfill:
            raise
        return []
    return frame_to_records(frame)


async def _enqueue_follow_ups(context: JobContext, symbol: str, *, new_rows: int) -> dict[str, str]:
    """Forecast and evaluate after new bars (or when the symbol has no forecast yet); the first
    training when the symbol has no model and none is on its way."""
    runtime = context.runtime
    async with runtime.sessions() as session:
        has_forecast = bool(await ForecastRepository(session).latest(symbol))
        has_model = bool(await ModelVersionRepository(session).list(symbol=symbol, limit=1))
        training_pending = await JobRepository(session).has_pending(
            symbol=symbol, kind=JobKind.RETRAIN.value
        )
    enqueued: dict[str, str] = {}
    expiration = runtime.config.job_result_expiration
    if new_rows or not has_forecast:
        for kind in (JobKind.FORECAST, JobKind.EVALUATE):
            enqueued[kind.value] = await enqueue(
                runtime.scheduler,
                runtime.sessions,
                kind,
                symbol=symbol,
                kwargs={"symbol": symbol},
                result_expiration=expiration,
            )
    if not has_model and not training_pending:
        enqueued[JobKind.RETRAIN.value] = await enqueue(
            runtime.scheduler,
            runtime.sessions,
            JobKind.RETRAIN,
            symbol=symbol,
            kwargs={"symbol": symbol, "params": {"initial": True}},
            result_expiration=expiration,
        )
    return enqueued
