"""The ingest job: fetch a symbol's new daily bars, validate them, upsert them, queue what follows.

Bars are adjusted for splits and dividends, so a split rescales the whole history at the source.
Each fetch therefore re-reads a few already-stored sessions; when they no longer match what is
stored, the whole history is fetched again instead of appending bars on a different scale.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import Any, Final, Literal

import anyio

from db.contracts import (
    IngestResult,
    JobRequest,
    JobResult,
    ListingChecked,
    ListingNote,
    PricesIngested,
    RetrainParams,
    Skipped,
    SymbolArguments,
    decode_payload,
)
from db.enqueue import enqueue_jobs
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
from forecasting.listings import ReportedListing, compare_listing, listing_of
from forecasting.sources import FetchedBars, NoDataError, PriceSource, fetch_with_listing
from forecasting.sources.availability import newest_bar_date
from scheduler.conversions import frame_to_records
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


async def ingest_prices(context: JobContext[SymbolArguments]) -> JobResult:
    runtime = context.runtime
    symbol = context.arguments.symbol
    async with runtime.sessions() as session:
        watched = await SymbolRepository(session).find(symbol)
        last = await PriceRepository(session).last_date(symbol)
    if watched is None or not watched.active:
        return Skipped(skipped=f"{symbol} is not on the watchlist")
    exchange = watched.exchange
    end = last_closed_session(runtime.clock(), exchange)
    if last is None:
        fetched, full_refresh = await _backfill(context, symbol, end, exchange), False
    else:
        fetched, full_refresh = await _new_bars(context, symbol, last, end, exchange)
    records = fetched.records
    rows = await store_bars(context, symbol, records, via="ingest", full_refresh=full_refresh)
    warnings = await report_listing(context, symbol, exchange, fetched.listing)
    return IngestResult(
        rows=rows,
        first_date=min((r.date for r in records), default=None),
        last_date=max((r.date for r in records), default=None),
        full_refresh=full_refresh,
        enqueued=await _enqueue_follow_ups(context, symbol, new_rows=rows),
        listing_warnings=warnings,
    )


@dataclass(frozen=True, kw_only=True)
class _Fetched:
    """Bars as records, and the listing the source reported with them (None: it says nothing)."""

    records: list[BarRecord]
    listing: ReportedListing | None = None


async def _backfill(
    context: JobContext[SymbolArguments], symbol: str, end: date, exchange: str
) -> _Fetched:
    end = await history_end(context.runtime.source, symbol, end)
    start = backfill_start(end, context.runtime.config.backfill_years)
    return await _fetch(context.runtime.source, symbol, start, end, exchange, backfill=True)


async def history_end(source: PriceSource, symbol: str, end: date) -> date:
    """Where a backfill's window ends: ``end`` (the last closed session), or earlier, at the
    newest bar of a static source (a CSV directory or the sample), so that the backfill's years
    are counted back from the data and not from today's date."""
    newest = await anyio.to_thread.run_sync(
        partial(newest_bar_date, source, symbol), abandon_on_cancel=True
    )
    return min(end, newest) if newest is not None else end


async def _new_bars(
    context: JobContext[SymbolArguments], symbol: str, last: date, end: date, exchange: str
) -> tuple[_Fetched, bool]:
    """The bars after ``last`` (none when there are none), or the whole history again when the
    re-read overlap shows that the source re-adjusted it (``True``)."""
    runtime = context.runtime
    fetched = await _fetch(
        runtime.source, symbol, last - timedelta(days=OVERLAP_DAYS), end, exchange, backfill=False
    )
    records = fetched.records
    async with runtime.sessions() as session:
        stored = await PriceRepository(session).closes_on(
            symbol, [record.date for record in records if record.date <= last]
        )
    if history_rescaled(stored, records):
        logger.warning("%s: the source re-adjusted its history; fetching all of it", symbol)
        return await _backfill(context, symbol, end, exchange), True
    if not any(record.date > last for record in records):
        return _Fetched(records=[], listing=fetched.listing), False
    return fetched, False


async def report_listing(
    context: JobContext[Any], symbol: str, exchange: str, reported: ReportedListing | None
) -> list[str]:
    """Compare what the source reported about ``symbol``'s listing with its exchange's (currency,
    time zone) and say where they differ: a warning in the log and in the job's result each time,
    and a ``listing.checked`` event when the differences are not those last announced (found,
    changed, or gone), so a lasting one is announced once. A source that says nothing (CSV
    files) is nothing to compare."""
    if reported is None:
        return []
    try:
        listing = await anyio.to_thread.run_sync(listing_of, symbol, exchange)
    except ValueError as exc:  # no calendar for it here: the bars are stored, the check waits
        logger.warning("%s: cannot compare the source's listing: %s", symbol, exc)
        return []
    found = compare_listing(listing, reported)
    for item in found:
        logger.warning("%s", item.message)
    notes = [
        ListingNote(
            field=item.field, expected=item.expected, reported=item.reported, message=item.message
        )
        for item in found
    ]
    runtime = context.runtime
    async with runtime.sessions.begin() as session:
        events = EventRepository(session)
        last = (await events.latest_by_symbol(EventType.LISTING_CHECKED, [symbol])).get(symbol)
        said = decode_payload(last.type, last.payload) if last is not None else None
        unchanged = (
            isinstance(said, ListingChecked)
            and said.exchange == exchange
            and said.disagreements == notes
        )
        if not unchanged and (notes or said is not None):
            await events.append(
                ListingChecked(
                    exchange=exchange,
                    source=runtime.source.name.partition(":")[0],
                    disagreements=notes,
                    job_id=context.job_id,
                ),
                symbol=symbol,
            )
    return [note.message for note in notes]


async def store_bars(
    context: JobContext[Any],
    symbol: str,
    records: list[BarRecord],
    *,
    via: Literal["ingest", "retrain"],
    full_refresh: bool = False,
) -> int:
    """Upsert ``records`` and announce them (``prices.ingested``) in one transaction."""
    if not records:
        return 0
    runtime = context.runtime
    async with runtime.sessions.begin() as session:
        rows = await PriceRepository(session).upsert(symbol, records)
        await EventRepository(session).append(
            PricesIngested(
                rows=rows,
                first_date=min(r.date for r in records),
                last_date=max(r.date for r in records),
                source=runtime.source.name.partition(":")[0],
                via=via,
                full_refresh=full_refresh,
                job_id=context.job_id,
            ),
            symbol=symbol,
        )
    return rows


async def fetch_history(
    context: JobContext[Any],
    symbol: str,
    *,
    start: date | None,
    end: date | None,
    exchange: str,
) -> int:
    """Fetch and store ``symbol``'s bars in [start, end] (default: the backfill window up to the
    last closed session). For on-demand training of a symbol that is not watched, whose bars no
    ingest schedule keeps; returns the rows stored."""
    last_session = last_closed_session(context.runtime.clock(), exchange)
    end = min(end, last_session) if end is not None else last_session
    if start is None:
        newest = await history_end(context.runtime.source, symbol, end)
        start = backfill_start(newest, context.runtime.config.backfill_years)
    fetched = await _fetch(context.runtime.source, symbol, start, end, exchange, backfill=True)
    return await store_bars(context, symbol, fetched.records, via="retrain")


async def _fetch(
    source: PriceSource, symbol: str, start: date, end: date, exchange: str, *, backfill: bool
) -> _Fetched:
    """Fetch in a worker thread (yfinance and pandas parsing block); "nothing new" is no error
    for an incremental fetch, but a backfill that finds nothing is."""
    if start > end:
        return _Fetched(records=[])
    try:
        # abandon_on_cancel: a job timeout must not wait for a hung HTTP call to return.
        fetched: FetchedBars = await anyio.to_thread.run_sync(
            partial(fetch_with_listing, source, symbol, start, end, exchange=exchange),
            abandon_on_cancel=True,
        )
    except NoDataError:
        if backfill:
            raise
        return _Fetched(records=[])
    return _Fetched(records=frame_to_records(fetched.bars), listing=fetched.listing)


async def _enqueue_follow_ups(
    context: JobContext[SymbolArguments], symbol: str, *, new_rows: int
) -> dict[str, str]:
    """Forecast and evaluate after new bars (or when the symbol has no forecast yet); the first
    training when the symbol has no model and none is on its way."""
    runtime = context.runtime
    async with runtime.sessions() as session:
        has_forecast = bool(await ForecastRepository(session).latest(symbol))
        has_model = bool(await ModelVersionRepository(session).list(symbol=symbol, limit=1))
        training_pending = await JobRepository(session).has_pending(
            symbol=symbol, kind=JobKind.RETRAIN.value
        )
    requests: list[JobRequest] = []
    if new_rows or not has_forecast:
        requests += [
            JobRequest.for_symbol(kind, symbol) for kind in (JobKind.FORECAST, JobKind.EVALUATE)
        ]
    if not has_model and not training_pending:
        requests.append(JobRequest.retrain(symbol, RetrainParams(initial=True)))
    return await enqueue_follow_ups(context, requests)


async def enqueue_follow_ups(
    context: JobContext[Any], requests: list[JobRequest]
) -> dict[str, str]:
    """Queue ``requests`` the way every job is queued; returns their ids by kind."""
    runtime = context.runtime
    job_ids = await enqueue_jobs(
        runtime.scheduler,
        runtime.sessions,
        requests,
        result_expiration=timedelta(seconds=runtime.config.job_result_expiration),
    )
    return {request.kind.value: job_id for request, job_id in zip(requests, job_ids, strict=True)}
