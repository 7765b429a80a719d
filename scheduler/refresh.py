"""The daily refresh after an exchange's close, in batches.

``refresh:XNYS`` (one schedule per exchange, on its :class:`~scheduler.triggers.SessionCloseTrigger`)
queues a ``refresh`` job; it lists the exchange's active symbols not yet forecast for the closed
session and splits them into ``refresh_batch`` jobs of ``refresh_batch_size`` symbols. Each batch
fetches its symbols in one call (``forecasting.sources.fetch_batch``), upserts their new bars in
one transaction, forecasts every symbol not yet forecast for its last bar
(:mod:`scheduler.refresh_forecast`), evaluates matured forecasts in bulk, and queues a first
training for a symbol that has no model. Three jobs per symbol (ingest, forecast, evaluate) with
their ``job_runs`` rows and events become one job per hundred symbols.

A symbol that fails (unknown to the source, bad rows, a model that cannot serve) fails alone: it
is named in the batch's result and the log, and the others go on. Only a failure of the batch
itself (the database) fails, and is retried as a whole; a batch whose node died is re-enqueued
(``scheduler.outcomes``). Both are safe because every stage is idempotent: bars are upserts, a
symbol already forecast for its last bar is skipped, and an actual is filled once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import Any, Final

import anyio

from db.contracts import (
    JobRequest,
    PricesIngested,
    RefreshArguments,
    RefreshBatchArguments,
    RefreshBatchResult,
    RefreshPlanned,
    RetrainParams,
)
from db.enqueue import enqueue_jobs
from db.kinds import JobKind
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
from forecasting.listings import ReportedListing
from forecasting.sources import (
    BatchFetch,
    FetchRequest,
    NoDataError,
    SourceError,
    fetch_batch,
    reads_locally,
)
from forecasting.sources.batch import SYMBOL_FAILURES
from forecasting.symbols import InvalidSymbolError, normalize_symbol
from scheduler.conversions import frame_to_records
from scheduler.evaluate_job import evaluate_many
from scheduler.ingest import (
    OVERLAP_DAYS,
    backfill_start,
    history_end,
    history_rescaled,
    report_listing,
)
from scheduler.refresh_forecast import forecast_batch
from scheduler.runner import JobContext

logger = logging.getLogger(__name__)

#: Symbol failures kept by name in a batch's result (all are counted and logged).
FAILURES_KEPT: Final = 50


def split(symbols: Sequence[str], size: int) -> list[list[str]]:
    """``symbols`` in consecutive batches of at most ``size``."""
    return [list(symbols[i : i + size]) for i in range(0, len(symbols), size)]


async def plan_refresh(context: JobContext[RefreshArguments]) -> RefreshPlanned:
    """Queue one batch job per ``refresh_batch_size`` of the exchange's due symbols: active and
    not yet forecast from the closed session's bar. With ``symbols`` (a bulk registration),
    only those of them: their backfill and first forecast take a few batch jobs instead of an
    ingest and a forecast job each, and each batch queues their first trainings."""
    runtime = context.runtime
    exchange = context.arguments.exchange
    session_date = last_closed_session(runtime.clock(), exchange)
    async with runtime.sessions() as session:
        symbols = await SymbolRepository(session).active_on(exchange)
        if context.arguments.symbols is not None:
            asked = set(_valid(context.arguments.symbols, _log_invalid))
            symbols = [symbol for symbol in symbols if symbol in asked]
        done = await ForecastRepository(session).forecast_bars(symbols, session_date)
    due = [symbol for symbol in symbols if (symbol, session_date) not in done]
    requests = [
        JobRequest.refresh_batch(exchange, session_date, batch)
        for batch in split(due, runtime.config.refresh_batch_size)
    ]
    ids = await _enqueue(context, requests)
    logger.info(
        "%s %s: %d symbols due in %d batches", exchange, session_date, len(due), len(requests)
    )
    return RefreshPlanned(exchange=exchange, session=session_date, symbols=len(due), batches=ids)


def _valid(
    names: Sequence[str], on_invalid: Callable[[str, InvalidSymbolError], None]
) -> list[str]:
    """``names`` normalised; an invalid one goes to ``on_invalid`` and is left out (a job's
    arguments come from the database, and one bad name must not cost the others theirs)."""
    valid: list[str] = []
    for raw in names:
        try:
            valid.append(normalize_symbol(raw))
        except InvalidSymbolError as exc:
            on_invalid(raw, exc)
    return valid


def _log_invalid(raw: str, error: InvalidSymbolError) -> None:
    logger.warning("refresh: %s", error)


@dataclass(kw_only=True)
class _Batch:
    """What a batch learns as it goes, symbol by symbol."""

    exchange: str
    session: date
    symbols: list[str]
    last: dict[str, date] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def fail(self, symbol: str, error: BaseException | str) -> None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        logger.warning("refresh of %s failed: %s", symbol, text)
        self.failures[symbol] = text


async def refresh_batch(context: JobContext[RefreshBatchArguments]) -> RefreshBatchResult:
    runtime = context.runtime
    clock = _Stages()
    batch = await _open_batch(context)
    fetched = await _fetch(context, batch)
    clock.lap("fetch")
    rows = await _store(context, batch, fetched)
    for symbol, item in fetched.items():
        if item.listing is not None:
            await report_listing(context, symbol, batch.exchange, item.listing)
    clock.lap("store")
    stocked = [symbol for symbol in batch.symbols if symbol not in batch.failures]
    forecast = await forecast_batch(
        runtime.sessions,
        stocked,
        history=runtime.config.forecast_history,
        limiter=runtime.compute_limiter,
    )
    for symbol, error in forecast.failures.items():
        batch.fail(symbol, error)
    clock.lap("forecast")
    evaluated = await evaluate_many(runtime.sessions, stocked, job_id=context.job_id)
    clock.lap("evaluate")
    enqueued = await _first_trainings(context, stocked)
    clock.lap("first trainings")
    logger.info(
        "refresh batch of %d %s symbols: %d forecast, %d already, %d failed (%s)",
        len(batch.symbols),
        batch.exchange,
        len(forecast.forecast),
        len(forecast.already),
        len(batch.failures),
        clock,
    )
    return RefreshBatchResult(
        session=batch.session,
        symbols=len(batch.symbols),
        rows=rows,
        forecast=len(forecast.forecast),
        already_forecast=len(forecast.already),
        evaluated=evaluated,
        enqueued=enqueued,
        failed=dict(sorted(batch.failures.items())[:FAILURES_KEPT]),
        failed_count=len(batch.failures),
    )


class _Stages:
    """Seconds per stage of a batch, for its log line (where a slow refresh spends its time)."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self._laps: list[tuple[str, float]] = []

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self._laps.append((name, now - self._last))
        self._last = now

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self._laps)


async def _open_batch(context: JobContext[RefreshBatchArguments]) -> _Batch:
    """The batch's symbols that are still watched on its exchange, with their last bar dates."""
    arguments = context.arguments
    batch = _Batch(exchange=arguments.exchange, session=arguments.session, symbols=[])
    names = _valid(arguments.symbols, batch.fail)
    async with context.runtime.sessions() as session:
        watched = await SymbolRepository(session).find_many(sorted(set(names)))
        batch.symbols = [
            s
            for s in sorted(watched)
            if watched[s].active and watched[s].exchange == arguments.exchange
        ]
        batch.last = await PriceRepository(session).last_dates(batch.symbols)
    return batch


@dataclass(frozen=True, kw_only=True)
class _New:
    """A symbol's bars to store, and what the source said about its listing."""

    records: list[BarRecord]
    full_refresh: bool = False
    listing: ReportedListing | None = None


async def _requests(
    context: JobContext[RefreshBatchArguments], batch: _Batch
) -> list[FetchRequest]:
    """Per symbol: the sessions after its last bar with an overlap, or its backfill window."""
    requests: list[FetchRequest] = []
    for symbol in batch.symbols:
        last = batch.last.get(symbol)
        end = batch.session
        if last is None:
            try:
                end = await history_end(context.runtime.source, symbol, end)
            except SYMBOL_FAILURES as exc:  # the source does not know it
                batch.fail(symbol, exc)
                continue
            start = backfill_start(end, context.runtime.config.backfill_years)
        else:
            start = last - timedelta(days=OVERLAP_DAYS)
        if start <= end:
            requests.append(
                FetchRequest(symbol=symbol, start=start, end=end, exchange=batch.exchange)
            )
    return requests


async def _fetch(context: JobContext[RefreshBatchArguments], batch: _Batch) -> dict[str, _New]:
    """The new bars of every symbol, fetched in one call; the whole history again for a symbol
    the source re-adjusted. A batch where every symbol failed transiently (the source is down)
    raises, so that the job is retried; otherwise failures are the symbols'."""
    requests = await _requests(context, batch)
    if not requests:
        return {}
    answer = await _fetch_in_thread(context, requests)
    _raise_if_source_down(answer, len(requests))
    for symbol, error in answer.failed.items():
        if isinstance(error, NoDataError) and batch.last.get(symbol) is not None:
            continue  # nothing new since the last bar: no failure
        batch.fail(symbol, error)
    since = min((r.start for r in requests if r.start is not None), default=batch.session)
    async with context.runtime.sessions() as session:
        stored = await PriceRepository(session).closes_since(list(answer.fetched), since)
    new: dict[str, _New] = {}
    for symbol, item in answer.fetched.items():
        records = frame_to_records(item.bars)
        last = batch.last.get(symbol)
        if last is not None and history_rescaled(stored.get(symbol, {}), records):
            refetched = await _refetch(context, batch, symbol)
            if refetched is not None:
                new[symbol] = refetched
            continue
        if last is None or any(record.date > last for record in records):
            new[symbol] = _New(records=records, listing=item.listing)
    return new


async def _fetch_in_thread(
    context: JobContext[RefreshBatchArguments], requests: list[FetchRequest]
) -> BatchFetch:
    """``fetch_batch`` in a worker thread: a local source's parsing takes the node's compute
    slot (:attr:`~scheduler.runtime.WorkerRuntime.compute_limiter`), a network source's wait
    does not (its fetches overlap each other and the others' computing)."""
    runtime = context.runtime
    limiter = runtime.compute_limiter if reads_locally(runtime.source) else None
    answer: BatchFetch = await anyio.to_thread.run_sync(
        partial(fetch_batch, runtime.source, requests), abandon_on_cancel=True, limiter=limiter
    )
    return answer


def _raise_if_source_down(answer: BatchFetch, requested: int) -> None:
    transient = [
        error
        for error in answer.failed.values()
        if isinstance(error, SourceError) and error.transient
    ]
    if transient and len(transient) == requested:
        raise transient[0]


async def _refetch(
    context: JobContext[RefreshBatchArguments], batch: _Batch, symbol: str
) -> _New | None:
    """The whole history of a symbol whose source re-adjusted it (a split, a dividend)."""
    logger.warning("%s: the source re-adjusted its history; fetching all of it", symbol)
    try:
        end = await history_end(context.runtime.source, symbol, batch.session)
    except SYMBOL_FAILURES as exc:
        batch.fail(symbol, exc)
        return None
    start = backfill_start(end, context.runtime.config.backfill_years)
    request = FetchRequest(symbol=symbol, start=start, end=end, exchange=batch.exchange)
    answer = await _fetch_in_thread(context, [request])
    if symbol in answer.failed:
        batch.fail(symbol, answer.failed[symbol])
        return None
    item = answer.fetched[symbol]
    return _New(records=frame_to_records(item.bars), full_refresh=True, listing=item.listing)


async def _store(
    context: JobContext[RefreshBatchArguments], batch: _Batch, new: dict[str, _New]
) -> int:
    """Upsert every symbol's new bars and announce them, in one transaction."""
    if not new:
        return 0
    source = context.runtime.source.name.partition(":")[0]
    async with context.runtime.sessions.begin() as session:
        rows = await PriceRepository(session).upsert_many(
            {symbol: item.records for symbol, item in new.items()}
        )
        await EventRepository(session).append_many(
            (
                PricesIngested(
                    rows=len(item.records),
                    first_date=min(r.date for r in item.records),
                    last_date=max(r.date for r in item.records),
                    source=source,
                    via="ingest",
                    full_refresh=item.full_refresh,
                    job_id=context.job_id,
                ),
                symbol,
            )
            for symbol, item in new.items()
            if item.records
        )
    return rows


async def _first_trainings(
    context: JobContext[RefreshBatchArguments], symbols: list[str]
) -> dict[str, str]:
    """A first training for each symbol with bars but no model and none on its way."""
    runtime = context.runtime
    async with runtime.sessions() as session:
        trained = await ModelVersionRepository(session).symbols_with_versions(symbols)
        candidates = [symbol for symbol in symbols if symbol not in trained]
        pending = await JobRepository(session).pending_symbols(
            candidates, kind=JobKind.RETRAIN.value
        )
        untrained = [symbol for symbol in candidates if symbol not in pending]
    requests = [JobRequest.retrain(s, RetrainParams(initial=True)) for s in untrained]
    if not requests:
        return {}
    ids = await _enqueue(context, requests)
    return {str(r.symbol): job_id for r, job_id in zip(requests, ids, strict=True)}


async def _enqueue(context: JobContext[Any], requests: list[JobRequest]) -> list[str]:
    """Queue ``requests`` the way every job is queued; their ids, in order."""
    if not requests:
        return []
    runtime = context.runtime
    return await enqueue_jobs(
        runtime.scheduler,
        runtime.sessions,
        requests,
        result_expiration=timedelta(seconds=runtime.config.job_result_expiration),
    )
