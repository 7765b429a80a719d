"""Queries on stored forecasts: one batch per issue, the latest per symbol, history, evaluation."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import utcnow
from db.models import ForecastRow
from db.repositories._dialect import within_dates


@dataclass(frozen=True, kw_only=True, slots=True)
class ForecastStepRecord:
    """One horizon step of a forecast about to be stored."""

    step: int
    target_date: date
    point: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    naive: float
    #: What the served plan's calibration needs once the step matures (None without a plan).
    calibration: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class NewForecast:
    """One whole forecast of one symbol about to be stored (a refresh batch stores many)."""

    symbol: str
    model_version_id: int | None
    model_kind: str
    issued_at: datetime
    last_observed_date: date
    last_close: float
    steps: Sequence[ForecastStepRecord]
    served_plan_id: int | None = None


_INSERT_CHUNK = 1000  # rows per INSERT: 17 columns each, well under SQLite's parameter bound


class ForecastRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_many(self, forecasts: Iterable[NewForecast]) -> int:
        """Store every step of every forecast with bulk inserts (no ORM objects: a refresh batch
        writes a thousand rows); returns the rows written. The caller's transaction makes it
        all-or-nothing."""
        rows: list[dict[str, Any]] = []
        for forecast in forecasts:
            if not forecast.steps:
                raise ValueError(f"a forecast of {forecast.symbol} needs at least one step")
            head = {
                "symbol": forecast.symbol,
                "model_version_id": forecast.model_version_id,
                "model_kind": forecast.model_kind,
                "issued_at": forecast.issued_at,
                "last_observed_date": forecast.last_observed_date,
                "last_close": forecast.last_close,
                "served_plan_id": forecast.served_plan_id,
            }
            rows.extend({**head, **asdict(step)} for step in forecast.steps)
        for start in range(0, len(rows), _INSERT_CHUNK):
            await self._session.execute(insert(ForecastRow), rows[start : start + _INSERT_CHUNK])
        return len(rows)

    async def forecast_bars(self, symbols: Collection[str], since: date) -> set[tuple[str, date]]:
        """The (symbol, last observed date) pairs of ``symbols`` forecast from a bar on or after
        ``since``: which symbols are already forecast for their last bar."""
        if not symbols:
            return set()
        result = await self._session.execute(
            select(ForecastRow.symbol, ForecastRow.last_observed_date)
            .where(ForecastRow.symbol.in_(list(symbols)), ForecastRow.last_observed_date >= since)
            .distinct()
        )
        return {(row[0], row[1]) for row in result}

    async def matured_unevaluated_many(
        self, up_to: Mapping[str, date]
    ) -> dict[str, list[ForecastRow]]:
        """:meth:`matured_unevaluated` of several symbols (each up to its own date), one query."""
        if not up_to:
            return {}
        result = await self._session.execute(
            select(ForecastRow)
            .where(
                ForecastRow.symbol.in_(list(up_to)),
                ForecastRow.target_date <= max(up_to.values()),
                ForecastRow.actual.is_(None),
            )
            .order_by(ForecastRow.symbol, ForecastRow.target_date)
        )
        matured: dict[str, list[ForecastRow]] = {}
        for row in result.scalars():
            if row.target_date <= up_to[row.symbol]:
                matured.setdefault(row.symbol, []).append(row)
        return matured

    async def add_batch(
        self,
        *,
        symbol: str,
        model_version_id: int | None,
        model_kind: str,
        issued_at: datetime,
        last_observed_date: date,
        last_close: float,
        steps: Iterable[ForecastStepRecord],
        served_plan_id: int | None = None,
    ) -> list[ForecastRow]:
        """Store every step of one forecast; the caller's transaction makes it all-or-nothing."""
        rows = [
            ForecastRow(
                symbol=symbol,
                model_version_id=model_version_id,
                model_kind=model_kind,
                issued_at=issued_at,
                last_observed_date=last_observed_date,
                last_close=last_close,
                target_date=step.target_date,
                step=step.step,
                point=step.point,
                lower_80=step.lower_80,
                upper_80=step.upper_80,
                lower_95=step.lower_95,
                upper_95=step.upper_95,
                naive=step.naive,
                served_plan_id=served_plan_id,
                calibration=step.calibration,
            )
            for step in steps
        ]
        if not rows:
            raise ValueError("a forecast needs at least one step")
        self._session.add_all(rows)
        await self._session.flush()
        return rows

    async def latest(self, symbol: str) -> list[ForecastRow]:
        """Every step of the most recently issued forecast of ``symbol`` (empty if none)."""
        newest = (
            select(func.max(ForecastRow.issued_at))
            .where(ForecastRow.symbol == symbol)
            .scalar_subquery()
        )
        result = await self._session.execute(
            select(ForecastRow)
            .where(ForecastRow.symbol == symbol, ForecastRow.issued_at == newest)
            .order_by(ForecastRow.step)
        )
        return list(result.scalars().all())

    async def latest_issued_at(self) -> dict[str, datetime]:
        """When each symbol's latest forecast was issued (for forecast-age metrics)."""
        result = await self._session.execute(
            select(ForecastRow.symbol, func.max(ForecastRow.issued_at)).group_by(ForecastRow.symbol)
        )
        return {row[0]: row[1] for row in result}

    async def history(
        self,
        symbol: str,
        *,
        start: date | None = None,
        end: date | None = None,
        limit: int = 1000,
    ) -> Sequence[ForecastRow]:
        """Forecast steps of ``symbol`` whose target date lies in [start, end], oldest first."""
        query = within_dates(
            select(ForecastRow).where(ForecastRow.symbol == symbol),
            ForecastRow.target_date,
            start,
            end,
        )
        query = query.order_by(
            ForecastRow.target_date, ForecastRow.issued_at, ForecastRow.step
        ).limit(limit)
        return (await self._session.execute(query)).scalars().all()

    async def matured_unevaluated(self, symbol: str, up_to: date) -> Sequence[ForecastRow]:
        """Steps whose target date has passed (<= ``up_to``) and whose actual is not yet known."""
        result = await self._session.execute(
            select(ForecastRow)
            .where(
                ForecastRow.symbol == symbol,
                ForecastRow.target_date <= up_to,
                ForecastRow.actual.is_(None),
            )
            .order_by(ForecastRow.target_date)
        )
        return result.scalars().all()

    async def record_actuals(
        self, rows: Iterable[ForecastRow], closes: dict[date, float], *, flush: bool = True
    ) -> int:
        """Fill actual and error (actual - point) of ``rows`` from ``closes``; returns how many.

        ``flush=False`` leaves the flush to a caller that fills many symbols' rows at once (the
        refresh batch's bulk evaluation)."""
        now = utcnow()
        filled = 0
        for row in rows:
            actual = closes.get(row.target_date)
            if actual is None:
                continue
            row.actual = actual
            row.error = actual - row.point
            row.evaluated_at = now
            filled += 1
        if flush:
            await self._session.flush()
        return filled

    async def evaluated(
        self, symbol: str, *, start: date | None = None, end: date | None = None
    ) -> Sequence[ForecastRow]:
        """Steps of ``symbol`` with a known actual, oldest target first (realised accuracy)."""
        query = within_dates(
            select(ForecastRow).where(
                ForecastRow.symbol == symbol, ForecastRow.actual.is_not(None)
            ),
            ForecastRow.target_date,
            start,
            end,
        )
        return (
            (await self._session.execute(query.order_by(ForecastRow.target_date))).scalars().all()
        )
