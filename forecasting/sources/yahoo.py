"""Yahoo Finance through yfinance (``yfinance``), the default source when the service is online.

yfinance does the talking and the parsing (chart API, cookie and crumb, split/dividend adjustment
with ``auto_adjust``); this adapter makes it behave like a library inside a long-running service:

* every failure becomes one of the named errors of :mod:`forecasting.sources.errors`, transient
  (rate limit, timeout, network or HTTP 5xx) or permanent (unknown symbol, no data in the range);
* every HTTP request, including the cookie, crumb and timezone requests yfinance times itself
  (10-30 s), is held to this source's ``timeout``;
* yfinance's on-disk caches (ticker timezones, cookies) go to a private temporary directory that is
  removed at exit, instead of the user's cache directory, so the service leaves no files behind and
  never reads a cookie cache another program could have written;
* yfinance memoises whole HTTP responses, failed ones included, for the life of the process; the
  adapter clears that memo after every fetch, so a retry after an error really asks Yahoo again;
* the chart metadata that comes with the bars (currency, Yahoo's exchange code, time zone) is
  returned beside them (:meth:`YFinanceSource.fetch_listed`), at no extra request;
* a bar of a session still open is dropped by the calendar of the symbol's own exchange.

Many symbols are fetched with :meth:`YFinanceSource.fetch_many`: in chunks, a few concurrently, and
a rate limit (HTTP 429) waited out with exponential backoff before the turned-away symbols are asked
for again (:func:`forecasting.sources.batch.fetch_in_chunks`). Yahoo's chart API answers one symbol
per request, and so does ``yfinance.download``, which loops over ``Ticker.history`` like this
adapter; it is not used because it turns each symbol's exception into a log line and drops the chart
metadata, so a batch could tell neither an unknown ticker from a rate limit nor a symbol's currency.

yfinance keeps one process-wide HTTP session and configuration. This module switches
``yfinance.config.debug.hide_exceptions`` off on first use (so failures raise instead of being
logged and returned as an empty frame) and hands yfinance its own :class:`YahooSession`; a process
should use yfinance only through this adapter.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import math
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from types import ModuleType
from typing import Any, Final
from urllib.parse import urlsplit

import pandas as pd
from curl_cffi.requests import Response, Session
from curl_cffi.requests import exceptions as curl_exceptions

from forecasting.bars import conform_bars, last_date
from forecasting.calendar import (
    CalendarUnavailableError,
    DateOutsideCalendarError,
    UnknownExchangeError,
    is_trading_day,
    session_close_utc,
)
from forecasting.errors import PortableError
from forecasting.exchanges import ExchangeInferenceError, infer_exchange, validate_exchange
from forecasting.listings import ReportedListing
from forecasting.sources.base import check_range, select_range
from forecasting.sources.batch import (
    BatchFetch,
    BatchPolicy,
    FetchedBars,
    FetchRequest,
    fetch_in_chunks,
)
from forecasting.sources.errors import (
    NoDataError,
    RateLimitedError,
    SourceError,
    SourceTimeoutError,
    SourceUnavailableError,
    UnknownSymbolError,
)
from forecasting.sources.yahoo_listing import reported_listing
from forecasting.symbols import normalize_symbol
from forecasting.validation import clean_bars

logger = logging.getLogger("forecasting.sources.yahoo")

SOURCE_NAME: Final = "yfinance"
#: Responses from these hosts are Yahoo's data API; their error statuses classify failures.
_API_HOST_SUFFIX: Final = ".finance.yahoo.com"
_SETUP_LOCK: Final = threading.Lock()


class InvalidTimeoutError(PortableError, ValueError):
    """A timeout that is not a positive, finite number of seconds."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"timeout must be a positive number of seconds, got {timeout}")
        self.timeout = timeout


class YahooSession(Session[Response]):
    """The curl_cffi session yfinance sends every request through.

    On top of curl_cffi it keeps, per thread, a timeout cap that every request is held to, and the
    last error status Yahoo's data API answered with. yfinance sometimes turns an HTTP 5xx or 429
    into an exception that no longer says so (a JSON error, a "no price data" error); that status is
    what tells a transient failure from a permanent one. Both live per thread because yfinance runs
    each fetch on the caller's thread and one session serves every fetch in the process. It
    impersonates Chrome by default, as yfinance's own session does: Yahoo rejects unknown TLS
    fingerprints.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("impersonate", "chrome")
        super().__init__(**kwargs)
        self._fetch_state = threading.local()

    def begin_fetch(self, *, timeout_cap: float) -> None:
        """Hold this thread's requests to ``timeout_cap`` seconds and forget its last error."""
        self._fetch_state.timeout_cap = timeout_cap
        self._fetch_state.api_error = None

    @property
    def last_api_error(self) -> int | None:
        """The last HTTP error status from Yahoo's data API on this thread since ``begin_fetch``."""
        status: int | None = getattr(self._fetch_state, "api_error", None)
        return status

    def request(self, *args: Any, **kwargs: Any) -> Response:
        cap: float | None = getattr(self._fetch_state, "timeout_cap", None)
        if cap is not None:
            asked = kwargs.get("timeout")
            if isinstance(asked, int | float) and asked > 0:
                kwargs["timeout"] = min(float(asked), cap)
            else:
                # None (wait forever), a (connect, read) tuple or nothing at all: the cap alone.
                kwargs["timeout"] = cap
        response = super().request(*args, **kwargs)
        host = urlsplit(response.url).hostname or ""
        if response.status_code >= 400 and host.endswith(_API_HOST_SUFFIX):
            self._fetch_state.api_error = response.status_code
        return response


class YFinanceSource:
    """Daily bars from Yahoo Finance, split and dividend adjusted (``auto_adjust``).

    ``session`` is for tests and special networks (a proxy, a test server); by default every
    source in the process shares one :class:`YahooSession`, because yfinance keeps a single
    process-wide session and sources taking turns to replace it would race. A bar for a session
    that has not closed yet (Yahoo serves today's bar while the market is open) is dropped, because
    it is not final: the calendar of the symbol's exchange decides (``exchange`` overrides it for
    every symbol; by default it is the request's, else the one the ticker names, else the one
    Yahoo reports), and ``clock`` (aware UTC "now") exists so tests can set the time. ``batch``
    says how :meth:`fetch_many` works through many symbols.
    """

    name: str = SOURCE_NAME

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        session: YahooSession | None = None,
        exchange: str | None = None,
        clock: Callable[[], datetime] | None = None,
        batch: BatchPolicy | None = None,
    ) -> None:
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise InvalidTimeoutError(timeout)
        self.timeout = float(timeout)
        self.exchange = exchange
        self.batch = batch or BatchPolicy()
        self._session = session
        self._clock = clock or _utc_now

    def fetch(
        self,
        symbol: str,
        start: date | None = None,
        end: date | None = None,
        *,
        drop_bad: bool = False,
    ) -> pd.DataFrame:
        """Bars for ``symbol`` (see :class:`~forecasting.sources.base.PriceSource`)."""
        return self.fetch_listed(symbol, start, end, drop_bad=drop_bad).bars

    def fetch_listed(
        self,
        symbol: str,
        start: date | None = None,
        end: date | None = None,
        *,
        drop_bad: bool = False,
        exchange: str | None = None,
    ) -> FetchedBars:
        """Bars for ``symbol`` and the listing Yahoo reports for it (currency, exchange, zone)."""
        check_range(start, end)
        request = FetchRequest(
            symbol=normalize_symbol(symbol),
            start=start,
            end=end,
            exchange=validate_exchange(exchange) if exchange is not None else None,
        )
        return self._fetch_request(request, drop_bad=drop_bad)

    def fetch_many(self, requests: Sequence[FetchRequest], *, drop_bad: bool = False) -> BatchFetch:
        """Bars and listings for many symbols, under :attr:`batch`; each failure is its symbol's."""
        return fetch_in_chunks(
            partial(self._fetch_request, drop_bad=drop_bad), requests, self.batch
        )

    def _fetch_request(self, request: FetchRequest, *, drop_bad: bool) -> FetchedBars:
        """One symbol, from a checked request (normalised symbol, ordered range)."""
        wanted, start, end = request.symbol, request.start, request.end
        yf = _configured_yfinance()
        session = self._session or _shared_session()
        session.begin_fetch(timeout_cap=self.timeout)
        try:
            ticker = yf.Ticker(wanted, session=session)
            history = ticker.history(
                **_history_window(start, end),
                interval="1d",
                auto_adjust=True,
                actions=False,
                repair=False,
                timeout=self.timeout,
            )
        except Exception as exc:
            error = self._translate(exc, wanted, start, end, session.last_api_error)
            if error is None:
                raise
            raise error from exc
        finally:
            _forget_memoised_responses()
        if history.empty:
            raise NoDataError(wanted, source=self.name, start=start, end=end)
        listing = _listing_of(ticker)
        exchange = request.exchange or self.exchange or _exchange_named_by(wanted, listing)
        bars = self._without_unfinished_session(_bars_from_history(history), exchange)
        cleaned = clean_bars(bars, drop_bad=drop_bad)
        selected = select_range(cleaned, symbol=wanted, source=self.name, start=start, end=end)
        return FetchedBars(symbol=wanted, bars=selected, listing=listing)

    def _without_unfinished_session(self, bars: pd.DataFrame, exchange: str | None) -> pd.DataFrame:
        last = last_date(bars)
        if last is None or exchange is None:
            return bars
        try:
            if not is_trading_day(last, exchange):
                return bars
            closes_at = session_close_utc(last, exchange)
        except (DateOutsideCalendarError, CalendarUnavailableError, UnknownExchangeError):
            return bars
        if self._clock() >= closes_at:
            return bars
        logger.info("dropping the %s bar: that session closes at %s", last, closes_at.isoformat())
        return bars.iloc[:-1].reset_index(drop=True)

    def _translate(
        self,
        exc: Exception,
        symbol: str,
        start: date | None,
        end: date | None,
        last_api_error: int | None,
    ) -> SourceError | None:
        """The named error for a failure inside yfinance, or None for one that is not Yahoo's."""
        network_error = self._network_error(exc, symbol)
        if network_error is not None:
            return network_error
        return self._answer_error(exc, symbol, start, end, last_api_error)

    def _network_error(self, exc: Exception, symbol: str) -> SourceError | None:
        """Failures that say what went wrong themselves: rate limit, timeout, HTTP, connection."""
        from yfinance.exceptions import YFRateLimitError

        if isinstance(exc, YFRateLimitError):
            return RateLimitedError(source=self.name)
        if isinstance(exc, curl_exceptions.Timeout | TimeoutError):
            return SourceTimeoutError(source=self.name, timeout=self.timeout)
        if isinstance(exc, curl_exceptions.HTTPError) and exc.response is not None:
            status = int(exc.response.status_code)
            by_status = self._error_for_status(status, symbol)
            return by_status or SourceUnavailableError(source=self.name, detail=f"HTTP {status}")
        if isinstance(exc, curl_exceptions.RequestException):
            return SourceUnavailableError(source=self.name, detail=f"{type(exc).__name__}: {exc}")
        return None

    def _answer_error(
        self,
        exc: Exception,
        symbol: str,
        start: date | None,
        end: date | None,
        last_api_error: int | None,
    ) -> SourceError | None:
        """Failures where yfinance could not use Yahoo's answer; the HTTP status, if any, decides."""
        from yfinance.exceptions import YFException, YFPricesMissingError, YFTzMissingError

        by_status = self._error_for_status(last_api_error, symbol)
        if isinstance(exc, YFTzMissingError):
            # yfinance: "every valid ticker has a timezone"; Yahoo gave none for this one.
            return by_status or UnknownSymbolError(symbol, source=self.name)
        if isinstance(exc, YFPricesMissingError):
            return by_status or NoDataError(symbol, source=self.name, start=start, end=end)
        if isinstance(exc, YFException | json.JSONDecodeError | KeyError | TypeError | IndexError):
            # Yahoo answered with something that is not chart data (an HTML error page, a JSON
            # error without a chart): provider trouble, worth a retry.
            detail = f"unexpected response ({type(exc).__name__}: {exc})"
            return by_status or SourceUnavailableError(source=self.name, detail=detail)
        return None

    def _error_for_status(self, status: int | None, symbol: str) -> SourceError | None:
        if status is None:
            return None
        if status == 429:
            return RateLimitedError(source=self.name, detail="HTTP 429")
        if status == 404:
            return UnknownSymbolError(symbol, source=self.name)
        if status >= 500:
            return SourceUnavailableError(source=self.name, detail=f"HTTP {status}")
        return None


def _listing_of(ticker: Any) -> ReportedListing | None:
    """The listing in the metadata of the chart ``ticker.history`` just fetched (no request: the
    metadata came with the bars; the lazy ``tradingPeriods`` key, which would cost one, is not
    read). Best effort: metadata yfinance cannot give is no reason to lose the bars."""
    fields = ("currency", "exchangeName", "exchangeTimezoneName")
    try:
        metadata = ticker.get_history_metadata()
        return reported_listing({key: metadata[key] for key in fields if key in metadata})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        logger.warning("%s: no listing in Yahoo's metadata (%s)", ticker.ticker, exc)
        return None


def _exchange_named_by(symbol: str, listing: ReportedListing | None) -> str | None:
    """The exchange the ticker names, else the one Yahoo reports, else None (no calendar)."""
    try:
        return infer_exchange(symbol)
    except ExchangeInferenceError:
        return listing.exchange if listing is not None else None


def _history_window(start: date | None, end: date | None) -> dict[str, Any]:
    """yfinance's arguments for an inclusive ``start..end`` (its ``end`` is exclusive).

    Without a start yfinance would fetch only the month before ``end``; ``period="max"`` asks for
    everything up to ``end`` instead.
    """
    window: dict[str, Any] = {}
    if start is None:
        window["period"] = "max"
    else:
        window["start"] = start
    if end is not None:
        window["end"] = end + timedelta(days=1)
    return window


def _bars_from_history(history: pd.DataFrame) -> pd.DataFrame:
    """yfinance's auto-adjusted frame (Date index in exchange time) as a bars frame.

    ``adj_close`` is NaN: with ``auto_adjust`` the close already is the adjusted close.
    """
    index = pd.DatetimeIndex(history.index)
    local_dates = index.tz_localize(None) if index.tz is not None else index
    frame = pd.DataFrame(
        {
            "date": local_dates.normalize(),
            "open": history["Open"].to_numpy(dtype="float64"),
            "high": history["High"].to_numpy(dtype="float64"),
            "low": history["Low"].to_numpy(dtype="float64"),
            "close": history["Close"].to_numpy(dtype="float64"),
            "volume": history["Volume"].to_numpy(dtype="float64"),
        }
    )
    return conform_bars(frame)


@dataclass(frozen=True, kw_only=True)
class _YFinanceSetup:
    module: ModuleType
    cache_dir: str


def _configured_yfinance() -> ModuleType:
    with _SETUP_LOCK:
        return _configure_yfinance_once().module


@functools.cache
def _configure_yfinance_once() -> _YFinanceSetup:
    import yfinance

    cache_dir = tempfile.mkdtemp(prefix="stockcast-yfinance-")
    atexit.register(shutil.rmtree, cache_dir, ignore_errors=True)
    yfinance.set_tz_cache_location(cache_dir)
    yfinance.config.debug.hide_exceptions = False
    return _YFinanceSetup(module=yfinance, cache_dir=cache_dir)


def _shared_session() -> YahooSession:
    with _SETUP_LOCK:
        return _make_shared_session()


@functools.cache
def _make_shared_session() -> YahooSession:
    return YahooSession()


def _forget_memoised_responses() -> None:
    from yfinance.data import YfData

    YfData.cache_get.cache_clear()


def _utc_now() -> datetime:
    return datetime.now(UTC)
