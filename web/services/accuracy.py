"""Realised accuracy of the forecasts a symbol was served, against the naive forecast.

Every evaluated forecast step (its target date has passed and the evaluate job filled in the
actual close) is scored with the same metric functions the backtests use
(:mod:`forecasting.metrics`), per model kind: over everything, over the most recent days, and per
calendar month or ISO week. The naive forecast is scored on exactly the same targets, so
``relative_mae`` below 1 means the served forecasts beat "tomorrow = today" in practice, not just
in the backtest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories import ForecastRepository, SymbolRepository
from web.errors import NoForecastError
from web.schemas.forecasts import AccuracyGroup, AccuracyReport, finite_or_none


class Grouping(StrEnum):
    MONTH = "month"
    WEEK = "week"


@dataclass(frozen=True, slots=True)
class _Scored:
    """What scoring needs from one evaluated forecast step (plain values, thread-safe)."""

    model_kind: str
    target_date: date
    actual: float
    point: float
    naive: float
    last_close: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float


class AccuracyService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def report(
        self,
        symbol: str,
        *,
        start: date | None,
        end: date | None,
        grouping: Grouping,
        recent_days: int,
    ) -> AccuracyReport:
        async with self._sessions() as session:
            rows = await ForecastRepository(session).evaluated(symbol, start=start, end=end)
            if not rows and await SymbolRepository(session).find(symbol) is None:
                raise NoForecastError(symbol, known=False)
            scored = [
                _Scored(
                    model_kind=row.model_kind,
                    target_date=row.target_date,
                    actual=float(row.actual),
                    point=row.point,
                    naive=row.naive,
                    last_close=row.last_close,
                    lower_80=row.lower_80,
                    upper_80=row.upper_80,
                    lower_95=row.lower_95,
                    upper_95=row.upper_95,
                )
                for row in rows
                if row.actual is not None
            ]
        # numpy work on thousands of rows: off the event loop.
        return await anyio.to_thread.run_sync(
            lambda: build_report(symbol, scored, grouping=grouping, recent_days=recent_days)
        )


def build_report(
    symbol: str, scored: Sequence[_Scored], *, grouping: Grouping, recent_days: int
) -> AccuracyReport:
    last = max((row.target_date for row in scored), default=None)
    first = min((row.target_date for row in scored), default=None)
    recent_from = last - timedelta(days=recent_days - 1) if last is not None else None
    period_of = _month if grouping is Grouping.MONTH else _week
    return AccuracyReport(
        symbol=symbol,
        evaluated=len(scored),
        first_target_date=first,
        last_target_date=last,
        grouping=grouping.value,
        overall=_groups(scored, lambda _row: None),
        recent_days=recent_days,
        recent=_groups(
            [row for row in scored if recent_from is not None and row.target_date >= recent_from],
            lambda _row: None,
        ),
        periods=_groups(scored, lambda row: period_of(row.target_date)),
    )


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def _groups(
    scored: Sequence[_Scored], period_of: Callable[[_Scored], str | None]
) -> list[AccuracyGroup]:
    buckets: dict[tuple[str, str | None], list[_Scored]] = defaultdict(list)
    for row in scored:
        buckets[(row.model_kind, period_of(row))].append(row)
    return [
        _score(kind, period, rows)
        for (kind, period), rows in sorted(
            buckets.items(), key=lambda item: (item[0][0], item[0][1] or "")
        )
    ]


def _score(model_kind: str, period: str | None, rows: Sequence[_Scored]) -> AccuracyGroup:
    import numpy as np

    from forecasting import metrics

    actual = np.array([row.actual for row in rows])
    point = np.array([row.point for row in rows])
    naive = np.array([row.naive for row in rows])
    reference = np.array([row.last_close for row in rows])
    mae = metrics.mae(actual, point)
    rmse = metrics.rmse(actual, point)
    naive_mae = metrics.mae(actual, naive)
    naive_rmse = metrics.rmse(actual, naive)
    return AccuracyGroup(
        model_kind=model_kind,
        period=period,
        count=len(rows),
        mae=mae,
        rmse=rmse,
        mape=_or_none(lambda: metrics.mape(actual, point)),
        naive_mae=naive_mae,
        naive_rmse=naive_rmse,
        relative_mae=mae / naive_mae if naive_mae > 0 else None,
        theil_u2=rmse / naive_rmse if naive_rmse > 0 else None,
        directional_accuracy=_or_none(
            lambda: metrics.directional_accuracy(actual, point, reference)
        ),
        coverage_80=_or_none(
            lambda: metrics.coverage(
                actual,
                np.array([row.lower_80 for row in rows]),
                np.array([row.upper_80 for row in rows]),
            )
        ),
        coverage_95=_or_none(
            lambda: metrics.coverage(
                actual,
                np.array([row.lower_95 for row in rows]),
                np.array([row.upper_95 for row in rows]),
            )
        ),
    )


def _or_none(compute: Callable[[], float]) -> float | None:
    """A figure that is undefined on these rows (MAPE with a zero actual) is reported as null."""
    from forecasting.metrics import MetricInputError

    try:
        return finite_or_none(compute())
    except MetricInputError:
        return None
