"""Whether the price source has a symbol, asked when the symbol is registered.

Watching a symbol the source lacks would only queue a backfill and a training that fail later, so
``POST /symbols`` asks first and refuses it with a 422 naming the symbols the source does have (for
a CSV directory or the sample). The question runs in a worker thread under a timeout: reading a
CSV file or calling Yahoo must never block the event loop.

An unreachable source (Yahoo timing out, rate limiting, the network down) does not refuse the
registration: a source that is down for a minute says nothing about the symbol, and the ingest job
retries a transient failure on its own. The registration goes ahead and the reason is logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from web.errors import InvalidRequestError

if TYPE_CHECKING:
    from forecasting.sources import PriceSource

logger = logging.getLogger(__name__)


class SymbolUnavailableError(InvalidRequestError):
    """The source has no prices for the symbol: a 422 on the ``symbol`` field."""

    def __init__(self, problem: str) -> None:
        super().__init__("symbol", problem)


class SymbolCheck:
    """Asks the configured source (built on first use: yfinance is a heavy import) about a symbol."""

    def __init__(
        self, *, source_spec: str, timeout_s: float, source: PriceSource | None = None
    ) -> None:
        """``source``: a ready source instead of the one ``source_spec`` names; tests hand in one
        that stands in for Yahoo."""
        self._source_spec = source_spec
        self._timeout_s = timeout_s
        self._source = source
        self._lock = threading.Lock()

    async def ensure_available(self, symbol: str) -> None:
        """Return when ``symbol`` may be watched; :class:`SymbolUnavailableError` when the source
        definitely lacks it. A source that fails or does not answer in time lets it through."""
        from forecasting.sources import SourceError
        from forecasting.sources.availability import SymbolUnavailableError as Unavailable

        try:
            with anyio.fail_after(self._timeout_s):
                await anyio.to_thread.run_sync(partial(self._check, symbol), abandon_on_cancel=True)
        except Unavailable as exc:
            raise SymbolUnavailableError(str(exc)) from None
        except TimeoutError:
            logger.info(
                "registering %s without checking it: the price source did not answer within %g s",
                symbol,
                self._timeout_s,
            )
        except SourceError as exc:
            logger.info("registering %s without checking it: %s", symbol, exc)

    async def known_symbols(self) -> list[str] | None:
        """The symbols a static source (a CSV directory, the sample) has, for hints; ``None`` for
        a live source, or when the listing fails or takes longer than the timeout."""
        from forecasting.sources import SourceError
        from forecasting.sources.availability import StaticPriceSource

        def listing() -> list[str] | None:
            source = self._built()
            return source.symbols() if isinstance(source, StaticPriceSource) else None

        if self._source_spec == "yfinance" and self._source is None:
            return None  # no need to import yfinance for a hint
        try:
            with anyio.fail_after(self._timeout_s):
                return await anyio.to_thread.run_sync(listing, abandon_on_cancel=True)
        except (TimeoutError, SourceError, OSError):
            return None

    def _check(self, symbol: str) -> None:
        from forecasting.sources.availability import check_symbol_available

        check_symbol_available(self._built(), symbol, today=datetime.now(UTC).date())

    def _built(self) -> PriceSource:
        with self._lock:
            if self._source is None:
                from forecasting.sources import make_source

                self._source = make_source(self._source_spec, timeout=self._timeout_s)
            return self._source


#: Symbols of one batch asked about at once (each in its own worker thread).
BATCH_CONCURRENCY = 8


async def ensure_all_available(
    check: Callable[[str], Awaitable[None]], symbols: Sequence[str]
) -> None:
    """``check`` every symbol of a batch, a few at a time; one 422 names every symbol refused."""
    refused: list[str] = []
    limiter = anyio.CapacityLimiter(BATCH_CONCURRENCY)

    async def one(symbol: str) -> None:
        async with limiter:
            try:
                await check(symbol)
            except SymbolUnavailableError as exc:
                refused.append(exc.problem)

    async with anyio.create_task_group() as group:
        for symbol in symbols:
            group.start_soon(one, symbol)
    if refused:
        raise SymbolUnavailableError("; ".join(sorted(refused)))
