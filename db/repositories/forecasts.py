"""Queries on stored forecasts: one batch per issue, the latest per symbol, history, evaluation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import utcnow
from db.models import ForecastRow


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


class ForecastRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

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
        query = select(ForecastRow).where(ForecastRow.symbol == symbol)
        if start is not None:
            query = query.where(ForecastRow.target_date >= start)
        if end is not None:
            query = query.where(ForecastRow.target_date <= end)
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

    async def record_actuals(self, rows: Iterable[ForecastRow], closes: dict[date, float]) -> int:
        """Fill actual and error (actual - point) of ``rows`` from ``closes``; returns how many."""
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
        await self._session.flush()
        return filled

    async def evaluated(
        self, symbol: str, *, start: date | None = None, end: date | None = None
    ) -> Sequence[ForecastRow]:
        """Steps of ``symbol`` with a known actual, oldest target first (realised accuracy)."""
        query = select(ForecastRow).where(
            ForecastRow.symbol == symbol, ForecastRow.actual.is_not(None)
        )
        if start is not None:
            query = query.where(ForecastRow.target_date >= start)
        if end is not None:
            query = query.where(ForecastRow.target_date <= end)
        return (
            (await self._session.execute(query.order_by(ForecastRow.target_date))).scalars().all()
        )
