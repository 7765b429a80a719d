"""Queries on served plans: the current plan of a symbol, a new plan at a retrain, the online
calibration state saved by the evaluate job, and the realised coverage of a plan's forecasts."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import utcnow
from db.models import ForecastRow, ServedPlan


@dataclass(frozen=True, kw_only=True)
class NewServedPlan:
    """A plan the gate chose at a retrain (see ``forecasting.serving.served_plan``)."""

    symbol: str
    model_version_id: int | None
    candidate: str
    point: str
    scale: str
    uses_network: bool
    recalibrated: bool
    reason: str
    recipe: dict[str, Any]
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class LiveCoverage:
    """How a plan's matured forecast steps turned out: how many, and how many fell inside the
    80% and 95% intervals."""

    matured: int
    within_80: int
    within_95: int


class ServedPlanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, new: NewServedPlan) -> ServedPlan:
        """Record ``new`` as the symbol's current plan (in the caller's transaction, the one that
        records the retrain's decision)."""
        row = ServedPlan(
            symbol=new.symbol,
            model_version_id=new.model_version_id,
            candidate=new.candidate,
            point=new.point,
            scale=new.scale,
            uses_network=new.uses_network,
            recalibrated=new.recalibrated,
            reason=new.reason,
            recipe=new.recipe,
            evidence=new.evidence,
        )
        self._session.add(row)
        await self._session.flush()
        return row

    async def get(self, plan_id: int) -> ServedPlan | None:
        return await self._session.get(ServedPlan, plan_id)

    async def current(self, symbol: str, *, for_update: bool = False) -> ServedPlan | None:
        """The symbol's newest plan. ``for_update`` locks it (PostgreSQL) so two evaluate jobs
        never both feed the same outcomes to its calibration state."""
        query = (
            select(ServedPlan)
            .where(ServedPlan.symbol == symbol)
            .order_by(ServedPlan.id.desc())
            .limit(1)
        )
        if for_update:
            query = query.with_for_update()
        return (await self._session.execute(query)).scalar_one_or_none()

    async def current_many(
        self, symbols: Collection[str], *, for_update: bool = False
    ) -> dict[str, ServedPlan]:
        """:meth:`current` of several symbols in one query, locked in id order (``for_update``)."""
        if not symbols:
            return {}
        newest = (
            select(func.max(ServedPlan.id))
            .where(ServedPlan.symbol.in_(list(symbols)))
            .group_by(ServedPlan.symbol)
        )
        query = select(ServedPlan).where(ServedPlan.id.in_(newest)).order_by(ServedPlan.id)
        if for_update:
            query = query.with_for_update()
        return {plan.symbol: plan for plan in (await self._session.execute(query)).scalars()}

    async def save_recipe(
        self, plan: ServedPlan, recipe: dict[str, Any], *, flush: bool = True
    ) -> None:
        """Store the plan's recipe after its calibration state learnt from matured forecasts.

        ``flush=False`` leaves the flush to a caller that updates many plans at once (a refresh
        batch's bulk evaluation: one flush of fifty plans instead of fifty, 2.6 s of a
        1,000-symbol refresh)."""
        plan.recipe = recipe
        plan.updated_at = utcnow()
        if flush:
            await self._session.flush()

    async def live_coverage(self, plan_id: int) -> LiveCoverage:
        """Realised coverage of the forecast steps this plan issued that have matured."""

        def inside(lower: Any, upper: Any) -> Any:
            hit = case(
                (ForecastRow.actual.between(lower, upper), 1),
                else_=0,
            )
            return func.coalesce(func.sum(hit), 0).cast(Integer)

        result = await self._session.execute(
            select(
                func.count(ForecastRow.id),
                inside(ForecastRow.lower_80, ForecastRow.upper_80),
                inside(ForecastRow.lower_95, ForecastRow.upper_95),
            ).where(ForecastRow.served_plan_id == plan_id, ForecastRow.actual.is_not(None))
        )
        count, within_80, within_95 = result.one()
        return LiveCoverage(matured=int(count), within_80=int(within_80), within_95=int(within_95))
