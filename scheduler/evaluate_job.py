"""The evaluate job: fill in the actual closes (and errors) of a symbol's forecasts whose target
day has passed, so realised accuracy is known, and feed those outcomes back to the served plan's
online calibration (adaptive conformal inference), in the same transaction.

Idempotent by construction: a step is fed back only in the transaction that fills its actual,
and the actual is filled once (``matured_unevaluated``), with the plan's row locked first so two
evaluate jobs of one symbol never both see it unfilled (PostgreSQL; SQLite has one writer). Of
several forecasts issued from the same last bar (a forecast re-run after a promotion), only the
newest is fed back: they are one observation of the market, not several.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import EvaluateResult, ForecastEvaluated, JobResult, SymbolArguments
from db.models import ForecastRow, ServedPlan
from db.repositories import (
    EventRepository,
    ForecastRepository,
    PriceRepository,
    ServedPlanRepository,
)
from scheduler.runner import JobContext


def _learn(plan: ServedPlan, filled: Sequence[ForecastRow]) -> dict[str, object] | None:
    """The plan's recipe after the steps it issued that just matured (None: nothing to learn)."""
    from forecasting.candidates import IntervalRecipe
    from forecasting.plan import MaturedStep, matured_outcomes

    newest: dict[tuple[object, int], ForecastRow] = {}
    for row in filled:
        if row.served_plan_id != plan.id or row.calibration is None or row.actual is None:
            continue
        key = (row.last_observed_date, row.step)
        if key not in newest or row.issued_at > newest[key].issued_at:
            newest[key] = row
    if not newest:
        return None
    # In the order they matured: a later target date learns after an earlier one.
    ordered = sorted(newest.values(), key=lambda r: (r.target_date, r.step))
    recipe = IntervalRecipe.from_dict(plan.recipe)
    outcomes = matured_outcomes(
        recipe,
        [
            MaturedStep(
                step=row.step,
                last_close=row.last_close,
                actual=float(row.actual),  # type: ignore[arg-type]
                calibration=row.calibration or {},
            )
            for row in ordered
        ],
    )
    if not outcomes:
        return None
    return replace(recipe, state=recipe.state.update(outcomes)).to_dict()


async def evaluate_symbol(context: JobContext[SymbolArguments]) -> JobResult:
    symbol = context.arguments.symbol
    async with context.runtime.sessions.begin() as session:
        plans = ServedPlanRepository(session)
        plan = await plans.current(symbol, for_update=True)
        prices = PriceRepository(session)
        up_to = await prices.last_date(symbol)
        if up_to is None:
            return EvaluateResult(filled=0, up_to=None)
        forecasts = ForecastRepository(session)
        matured = await forecasts.matured_unevaluated(symbol, up_to)
        if not matured:
            return EvaluateResult(filled=0, up_to=up_to)
        closes = await prices.closes_on(symbol, {row.target_date for row in matured})
        filled = await forecasts.record_actuals(matured, closes)
        if filled:
            if plan is not None:
                learnt = _learn(plan, [row for row in matured if row.actual is not None])
                if learnt is not None:
                    await plans.save_recipe(plan, learnt)
            await EventRepository(session).append(
                ForecastEvaluated(filled=filled, up_to=up_to, job_id=context.job_id),
                symbol=symbol,
            )
    return EvaluateResult(filled=filled, up_to=up_to)


async def evaluate_many(
    sessions: async_sessionmaker[AsyncSession], symbols: Sequence[str], *, job_id: str | None
) -> int:
    """:func:`evaluate_symbol` for several symbols in one transaction and a handful of queries
    (a refresh batch); returns the steps filled. The same order of locks: the plans first."""
    async with sessions.begin() as session:
        prices, forecasts = PriceRepository(session), ForecastRepository(session)
        plans = await ServedPlanRepository(session).current_many(symbols, for_update=True)
        up_to = await prices.last_dates(symbols)
        matured = await forecasts.matured_unevaluated_many(up_to)
        if not matured:
            return 0
        oldest = min(row.target_date for rows in matured.values() for row in rows)
        closes = await prices.closes_since(list(matured), oldest)
        events: list[tuple[ForecastEvaluated, str | None]] = []
        total = 0
        for symbol, rows in matured.items():
            filled = await forecasts.record_actuals(rows, closes.get(symbol, {}), flush=False)
            if not filled:
                continue
            total += filled
            plan = plans.get(symbol)
            if plan is not None:
                learnt = _learn(plan, [row for row in rows if row.actual is not None])
                if learnt is not None:
                    await ServedPlanRepository(session).save_recipe(plan, learnt, flush=False)
            events.append(
                (ForecastEvaluated(filled=filled, up_to=up_to[symbol], job_id=job_id), symbol)
            )
        await session.flush()
        await EventRepository(session).append_many(events)
    return total
