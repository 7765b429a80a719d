"""The registration check: a symbol the source lacks is refused; a source that is down or slow
lets the registration through, and the event loop never waits on it."""

from __future__ import annotations

import threading
import time
from datetime import date

import anyio
import pandas as pd
import pytest

from forecasting.sources import SourceUnavailableError, UnknownSymbolError
from web.errors import InvalidRequestError
from web.services.symbol_check import SymbolCheck, SymbolUnavailableError

pytestmark = pytest.mark.anyio


class StandInYahoo:
    """The network edge: unknown tickers, an outage, and a hang."""

    name = "yfinance"

    def __init__(self, *, hang_s: float = 0.0, down: bool = False) -> None:
        self.hang_s = hang_s
        self.down = down
        self.threads: list[str] = []

    def fetch(
        self,
        symbol: str,
        start: date | None = None,
        end: date | None = None,
        *,
        drop_bad: bool = False,
    ) -> pd.DataFrame:
        self.threads.append(threading.current_thread().name)
        if self.hang_s:
            time.sleep(self.hang_s)
        if self.down:
            raise SourceUnavailableError(source=self.name, detail="connection refused")
        if symbol == "NOPE":
            raise UnknownSymbolError(symbol, source=self.name)
        return pd.DataFrame({"date": [pd.Timestamp(2026, 11, 27)]})


async def test_an_unknown_symbol_is_refused_as_a_symbol_field_error() -> None:
    yahoo = StandInYahoo()
    check = SymbolCheck(source_spec="yfinance", timeout_s=5, source=yahoo)
    with pytest.raises(SymbolUnavailableError) as caught:
        await check.ensure_available("NOPE")
    assert isinstance(caught.value, InvalidRequestError)
    assert caught.value.field_name == "symbol"
    assert "NOPE" in str(caught.value)
    await check.ensure_available("AAPL")
    assert threading.main_thread().name not in yahoo.threads  # asked off the event loop


async def test_a_source_that_is_down_lets_the_registration_through() -> None:
    check = SymbolCheck(source_spec="yfinance", timeout_s=5, source=StandInYahoo(down=True))
    await check.ensure_available("NOPE")  # no error: the ingest retries a transient failure


async def test_a_hanging_source_is_given_up_on_after_the_timeout() -> None:
    check = SymbolCheck(source_spec="yfinance", timeout_s=0.2, source=StandInYahoo(hang_s=2.0))
    started = anyio.current_time()
    await check.ensure_available("NOPE")
    assert anyio.current_time() - started < 1.5


async def test_the_configured_sample_is_built_and_asked() -> None:
    check = SymbolCheck(source_spec="sample", timeout_s=5)
    await check.ensure_available("INTC")
    with pytest.raises(SymbolUnavailableError, match="AAPL, GOOG, INTC, SPY"):
        await check.ensure_available("DIS")
