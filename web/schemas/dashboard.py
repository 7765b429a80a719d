"""Payloads of the dashboard's read-only aggregations: the watchlist at a glance, and what a
symbol's chart draws (recent closes, which the API has no route for, and recent next-day
forecasts with their outcome, a slim cut of the forecast history).

They reuse the API's own pieces (forecast steps, model summaries, jobs) so the dashboard shows
exactly what the resource routes would say.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from db.models import ForecastRow, RetrainCadence
from db.repositories.overview import SymbolOverview
from forecasting.exchanges import EXCHANGE_CURRENCIES
from web.schemas.forecasts import ForecastStepOut, finite_or_none, step_out
from web.schemas.jobs import JobOut, job_out
from web.schemas.model_versions import ModelSummary, model_summary
from web.schemas.symbols import symbol_url


class LastClose(msgspec.Struct, frozen=True, kw_only=True):
    date: date
    close: float


class ForecastGlance(msgspec.Struct, frozen=True, kw_only=True):
    """The latest forecast reduced to what a watchlist row shows: its next trading day."""

    issued_at: datetime
    model_kind: str
    model_version_id: int | None
    last_observed_date: date
    last_close: float
    horizon: int
    next: ForecastStepOut


class WatchlistEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One watched symbol: its settings and the newest of each thing the service knows about it.

    ``champion`` is null while the naive baseline serves the symbol.
    """

    symbol: str
    #: Where it trades (ISO MIC) and the currency (ISO 4217) of every price in the entry.
    exchange: str
    currency: str | None
    horizon: int
    lookback: int
    retrain_cadence: RetrainCadence
    last_close: LastClose | None
    forecast: ForecastGlance | None
    champion: ModelSummary | None
    last_job: JobOut | None
    url: str
    forecast_url: str


class WatchlistPage(msgspec.Struct, frozen=True, kw_only=True):
    """Where the listed symbols stand: the search that chose them, how many match it, the
    position of the first (1-based; 0 when none is listed) and the keyset cursors of the pages
    around (null at either end)."""

    search: str | None
    limit: int
    #: Every watched symbol, matched or not.
    watched: int
    matching: int
    first: int
    #: ``after`` for the next page.
    next_after: str | None
    #: ``before`` for the previous page.
    previous_before: str | None


class WatchlistOverview(msgspec.Struct, frozen=True, kw_only=True):
    generated_at: datetime
    symbols: list[WatchlistEntry]
    page: WatchlistPage


class ClosePoint(msgspec.Struct, frozen=True, kw_only=True):
    date: date
    close: float


class RecentCloses(msgspec.Struct, frozen=True, kw_only=True):
    """The last ``count`` daily closes of a symbol, oldest first."""

    symbol: str
    count: int
    closes: list[ClosePoint]


class NextDayOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """A next-day forecast and the close that followed; ``error`` = actual - point."""

    target_date: date
    issued_at: datetime
    model_kind: str
    model_version_id: int | None
    point: float
    lower_80: float | None
    upper_80: float | None
    actual: float
    error: float
    naive_error: float
    within_80: bool | None


class NextDayOutcomes(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    count: int
    forecasts: list[NextDayOutcome]


def next_day_outcome(row: ForecastRow) -> NextDayOutcome:
    if row.actual is None:
        raise ValueError(f"forecast {row.id} has no actual close yet")
    lower, upper = finite_or_none(row.lower_80), finite_or_none(row.upper_80)
    return NextDayOutcome(
        target_date=row.target_date,
        issued_at=row.issued_at,
        model_kind=row.model_kind,
        model_version_id=row.model_version_id,
        point=row.point,
        lower_80=lower,
        upper_80=upper,
        actual=row.actual,
        error=row.actual - row.point,
        naive_error=row.actual - row.naive,
        # An unbounded interval (too few calibration errors) says nothing about coverage.
        within_80=lower <= row.actual <= upper if lower is not None and upper is not None else None,
    )


def watchlist_entry(item: SymbolOverview) -> WatchlistEntry:
    row = item.symbol
    url = symbol_url(row.symbol)
    return WatchlistEntry(
        symbol=row.symbol,
        exchange=row.exchange,
        currency=EXCHANGE_CURRENCIES.get(row.exchange),
        horizon=row.horizon,
        lookback=row.lookback,
        retrain_cadence=RetrainCadence(row.retrain_cadence),
        last_close=LastClose(date=item.last_bar.date, close=item.last_bar.close)
        if item.last_bar is not None
        else None,
        forecast=_glance(item),
        champion=model_summary(item.champion) if item.champion is not None else None,
        last_job=job_out(item.last_job) if item.last_job is not None else None,
        url=url,
        forecast_url=f"{url}/forecast",
    )


def _glance(item: SymbolOverview) -> ForecastGlance | None:
    if not item.forecast:
        return None
    first = item.forecast[0]
    return ForecastGlance(
        issued_at=first.issued_at,
        model_kind=first.model_kind,
        model_version_id=first.model_version_id,
        last_observed_date=first.last_observed_date,
        last_close=first.last_close,
        horizon=len(item.forecast),
        next=step_out(first),
    )
