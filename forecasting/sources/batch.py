"""Fetching many symbols in one call, where one bad symbol fails alone.

A batch is a list of :class:`FetchRequest` (each symbol with its own date range: an incremental
ingest and a backfill can share a batch). Its answer, :class:`BatchFetch`, holds the bars of every
symbol that succeeded and the error of every symbol that failed: an unknown ticker, a range with no
bars or a file with bad rows is that symbol's failure, never the batch's. Sources that can do
better than one fetch after another implement :class:`BatchPriceSource`; :func:`fetch_batch`
serves any source.

:func:`fetch_in_chunks` is the network sources' way: a few symbols at a time, concurrently, and a
rate limit waited out with exponential backoff and jitter (tenacity) before only the symbols that
were turned away are asked for again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, runtime_checkable

import pandas as pd
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from forecasting.calendar import CalendarUnavailableError
from forecasting.errors import PortableError
from forecasting.exchanges import UnknownExchangeError, validate_exchange
from forecasting.listings import ReportedListing
from forecasting.sources.base import InvalidDateRangeError, PriceSource, check_range
from forecasting.sources.errors import RateLimitedError, SourceError
from forecasting.symbols import InvalidSymbolError, normalize_symbol
from forecasting.validation import InvalidBarsError

logger = logging.getLogger("forecasting.sources.batch")

#: The failures that belong to one symbol of a batch; anything else is a fault of the batch itself.
SYMBOL_FAILURES = (
    SourceError,
    InvalidBarsError,
    InvalidSymbolError,
    InvalidDateRangeError,
    UnknownExchangeError,
    CalendarUnavailableError,
)


class DuplicateRequestError(PortableError, ValueError):
    """The same symbol was asked for twice in one batch, so which range is meant is unclear."""

    def __init__(self, symbol: str) -> None:
        super().__init__(f"{symbol} is requested more than once in one batch")
        self.symbol = symbol


@dataclass(frozen=True, kw_only=True)
class FetchRequest:
    """One symbol of a batch: its bars with ``start <= date <= end`` (either open).

    ``exchange`` is the symbol's exchange when it is known (the watchlist's); sources that drop a
    bar of a session still open decide by its calendar. None: the exchange the ticker names.
    """

    symbol: str
    start: date | None = None
    end: date | None = None
    exchange: str | None = None


@dataclass(frozen=True, kw_only=True)
class FetchedBars:
    """A symbol's bars (the :mod:`forecasting.bars` contract) and what the source says about its
    listing (None when the source says nothing, as CSV files don't)."""

    symbol: str
    bars: pd.DataFrame
    listing: ReportedListing | None = None


@dataclass(frozen=True, kw_only=True)
class BatchFetch:
    """The answer to a batch: bars per symbol that succeeded, the error per symbol that failed.

    Keys are normalised symbols; an invalid symbol is keyed by the text it was given as.
    """

    fetched: Mapping[str, FetchedBars] = field(default_factory=dict)
    failed: Mapping[str, Exception] = field(default_factory=dict)


@runtime_checkable
class BatchPriceSource(PriceSource, Protocol):
    """A price source with its own way of fetching many symbols at once."""

    def fetch_many(
        self, requests: Sequence[FetchRequest], *, drop_bad: bool = False
    ) -> BatchFetch: ...


@runtime_checkable
class ListedPriceSource(PriceSource, Protocol):
    """A price source that reports a symbol's listing (exchange, currency, zone) with its bars."""

    def fetch_listed(
        self,
        symbol: str,
        start: date | None = None,
        end: date | None = None,
        *,
        drop_bad: bool = False,
        exchange: str | None = None,
    ) -> FetchedBars: ...


def fetch_with_listing(
    source: PriceSource,
    symbol: str,
    start: date | None = None,
    end: date | None = None,
    *,
    exchange: str | None = None,
) -> FetchedBars:
    """Bars of ``symbol`` from any source, with the listing it reports where it reports one
    (``exchange``, the symbol's own, decides which bars are final on sources that ask)."""
    if isinstance(source, ListedPriceSource):
        return source.fetch_listed(symbol, start, end, exchange=exchange)
    return FetchedBars(symbol=normalize_symbol(symbol), bars=source.fetch(symbol, start, end))


def fetch_batch(
    source: PriceSource, requests: Sequence[FetchRequest], *, drop_bad: bool = False
) -> BatchFetch:
    """Fetch every request from ``source``, by its own batch method where it has one."""
    if isinstance(source, BatchPriceSource):
        return source.fetch_many(requests, drop_bad=drop_bad)
    return fetch_each(source, requests, drop_bad=drop_bad)


def fetch_each(
    source: PriceSource, requests: Sequence[FetchRequest], *, drop_bad: bool = False
) -> BatchFetch:
    """One :meth:`~PriceSource.fetch` after another, each symbol's failure kept as its own."""
    accepted, failed = checked_requests(requests)
    fetched: dict[str, FetchedBars] = {}
    for symbol, request in accepted.items():
        try:
            bars = source.fetch(symbol, request.start, request.end, drop_bad=drop_bad)
        except SYMBOL_FAILURES as exc:
            failed[symbol] = exc
        else:
            fetched[symbol] = FetchedBars(symbol=symbol, bars=bars)
    return BatchFetch(fetched=fetched, failed=failed)


def checked_requests(
    requests: Sequence[FetchRequest],
) -> tuple[dict[str, FetchRequest], dict[str, Exception]]:
    """The requests with valid symbols, ranges and exchanges, keyed by normalised symbol (with the
    exchange made canonical), and the failures of the others, before any I/O is done for them."""
    accepted: dict[str, FetchRequest] = {}
    failed: dict[str, Exception] = {}
    for request in requests:
        try:
            symbol = normalize_symbol(request.symbol)
        except InvalidSymbolError as exc:
            failed[str(request.symbol)] = exc
            continue
        if symbol in accepted or symbol in failed:
            raise DuplicateRequestError(symbol)
        try:
            check_range(request.start, request.end)
            exchange = validate_exchange(request.exchange) if request.exchange else None
        except (InvalidDateRangeError, UnknownExchangeError) as exc:
            failed[symbol] = exc
            continue
        accepted[symbol] = FetchRequest(
            symbol=symbol, start=request.start, end=request.end, exchange=exchange
        )
    return accepted, failed


def chunked(items: Sequence[FetchRequest], size: int) -> list[list[FetchRequest]]:
    """``items`` in consecutive chunks of at most ``size``."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


@dataclass(frozen=True, kw_only=True)
class BatchPolicy:
    """How a network source works through a batch.

    ``chunk_size`` symbols are fetched at a time, ``max_workers`` of them concurrently. Symbols
    that were rate limited are tried again, up to ``attempts`` tries in all, after waiting
    ``first_wait * 2**n`` seconds (at most ``max_wait``) plus up to ``jitter``. A chunk still rate
    limited after its last try ends the batch: the symbols not yet asked for fail as rate limited
    too, without a request, since asking would only prolong the limit.
    """

    chunk_size: int = 50
    max_workers: int = 4
    attempts: int = 4
    first_wait: float = 2.0
    max_wait: float = 60.0
    jitter: float = 1.0

    def __post_init__(self) -> None:
        for name in ("chunk_size", "max_workers", "attempts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("first_wait", "max_wait", "jitter"):
            if not getattr(self, name) >= 0:
                raise ValueError(
                    f"{name} must be a number of seconds >= 0, got {getattr(self, name)}"
                )


FetchOne = Callable[[FetchRequest], FetchedBars]


class _StillRateLimitedError(Exception):
    """Some symbols of a chunk were rate limited on this try (tenacity's signal to try again)."""


def fetch_in_chunks(
    fetch_one: FetchOne, requests: Sequence[FetchRequest], policy: BatchPolicy
) -> BatchFetch:
    """Fetch ``requests`` with ``fetch_one`` (which gets checked, normalised requests and raises
    one of :data:`SYMBOL_FAILURES` for a symbol that fails) chunk by chunk under ``policy``."""
    accepted, failed = checked_requests(requests)
    fetched: dict[str, FetchedBars] = {}
    chunks = chunked(list(accepted.values()), policy.chunk_size)
    for number, chunk in enumerate(chunks):
        done, chunk_failed = _fetch_chunk(fetch_one, chunk, policy)
        fetched.update(done)
        failed.update(chunk_failed)
        limit = next((e for e in chunk_failed.values() if isinstance(e, RateLimitedError)), None)
        if limit is not None:
            skipped = [request.symbol for later in chunks[number + 1 :] for request in later]
            if skipped:
                logger.warning("still rate limited: %d symbols not requested", len(skipped))
            failed.update(dict.fromkeys(skipped, limit))
            break
    return BatchFetch(fetched=fetched, failed=failed)


def _fetch_chunk(
    fetch_one: FetchOne, chunk: list[FetchRequest], policy: BatchPolicy
) -> tuple[dict[str, FetchedBars], dict[str, Exception]]:
    fetched: dict[str, FetchedBars] = {}
    failed: dict[str, Exception] = {}
    limited: dict[str, Exception] = {}
    pending = chunk
    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait_exponential(multiplier=policy.first_wait, max=policy.max_wait)
        + wait_random(0, policy.jitter),
        retry=retry_if_exception_type(_StillRateLimitedError),
        before_sleep=_log_backoff,
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                limited = {}
                for request, outcome in zip(
                    pending, _fetch_concurrently(fetch_one, pending, policy), strict=True
                ):
                    if isinstance(outcome, FetchedBars):
                        fetched[request.symbol] = outcome
                    elif isinstance(outcome, RateLimitedError):
                        limited[request.symbol] = outcome
                    else:
                        failed[request.symbol] = outcome
                pending = [request for request in pending if request.symbol in limited]
                if pending:
                    raise _StillRateLimitedError(len(pending))
    except _StillRateLimitedError:
        failed.update(limited)
    return fetched, failed


def _fetch_concurrently(
    fetch_one: FetchOne, requests: list[FetchRequest], policy: BatchPolicy
) -> list[FetchedBars | Exception]:
    def attempt(request: FetchRequest) -> FetchedBars | Exception:
        try:
            return fetch_one(request)
        except SYMBOL_FAILURES as exc:
            return exc

    workers = min(policy.max_workers, len(requests))
    if workers <= 1:
        return [attempt(request) for request in requests]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        return list(pool.map(attempt, requests))


def _log_backoff(state: RetryCallState) -> None:
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    error = state.outcome.exception() if state.outcome is not None else None
    logger.warning(
        "%s symbols rate limited; waiting %.1f s before try %d",
        error.args[0] if error is not None and error.args else "some",
        wait,
        state.attempt_number + 1,
    )
