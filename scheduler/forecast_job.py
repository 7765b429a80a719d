"""The forecast job: the symbol's served plan (or, for a symbol without one, its champion, or
the naive baseline) forecasts from the stored bars, and every horizon step is stored as one row,
announced by ``forecast.ready`` in the same transaction.

A plan serves its champion's network only when it needs it (an LSTM point, or its volatility
head); a simple plan serves naive or drift with its scale model run over the latest stored bars,
so a volatility shock in them widens the next forecast and calm narrows it. Every step stored
under a plan carries what the plan's online calibration needs once it matures (see the evaluate
job).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from db.base import utcnow
from db.contracts import ForecastReady, JobResult, Skipped, SymbolArguments
from db.repositories import (
    BarRecord,
    EventRepository,
    ForecastRepository,
    ForecastStepRecord,
    ModelVersionRepository,
    PriceRepository,
    ServedPlanRepository,
    SymbolRepository,
)
from forecasting.artifacts import ModelArtifact
from scheduler.conversions import records_to_bars
from scheduler.model_records import load_champion
from scheduler.runner import JobContext

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from forecasting.forecast import Forecast
    from forecasting.predictor import LSTMPredictor, SimplePredictor

logger = logging.getLogger(__name__)


class NoPricesError(LookupError):
    """A forecast was asked for a symbol whose prices were never ingested."""

    def __init__(self, symbol: str) -> None:
        super().__init__(f"no prices stored for {symbol}; run an ingest first")
        self.symbol = symbol


@dataclass(frozen=True, kw_only=True)
class Served:
    """What serves the symbol today: a plan (its id and recipe, and the network it needs), or
    else the champion's artifact, or else nothing (the naive baseline)."""

    plan_id: int | None = None
    recipe: dict[str, Any] | None = None
    artifact: ModelArtifact | None = None
    version_id: int | None = None


async def served_for(session: AsyncSession, symbol: str) -> Served:
    plan = await ServedPlanRepository(session).current(symbol)
    if plan is not None:
        artifact: ModelArtifact | None = None
        if plan.uses_network:
            champion = await load_champion(session, symbol)
            if champion is None or champion.version_id != plan.model_version_id:
                # The plan's network no longer serves (another champion was set outside a
                # retrain): the champion serves as it is, until the next retrain plans again.
                return Served(
                    artifact=champion.artifact if champion else None,
                    version_id=champion.version_id if champion else None,
                )
            artifact = champion.artifact
        return Served(
            plan_id=plan.id,
            recipe=dict(plan.recipe),
            artifact=artifact,
            version_id=plan.model_version_id if plan.uses_network else None,
        )
    champion = await load_champion(session, symbol)
    if champion is None:
        return Served()
    return Served(artifact=champion.artifact, version_id=champion.version_id)


class NetworkCache:
    """Networks rebuilt from their artifacts once per model version: a refresh batch whose
    symbols share a version (a global model) loads it once, not once per symbol."""

    def __init__(self) -> None:
        self._loaded: dict[int | None, LSTMPredictor] = {}

    def get(self, served: Served) -> LSTMPredictor:
        from forecasting.predictor import LSTMPredictor

        if served.artifact is None:  # pragma: no cover - callers check
            raise ValueError("no artifact to load")
        key = served.version_id
        if key is None or key not in self._loaded:
            # One intra-op thread: forecasts run in worker threads, several at once.
            loaded = LSTMPredictor.from_artifact(served.artifact, threads=1)
            if key is None:
                return loaded
            self._loaded[key] = loaded
        return self._loaded[key]


def _plan_predictor(
    served: Served, horizon: int, networks: NetworkCache
) -> LSTMPredictor | SimplePredictor:
    """``forecasting.plan.plan_predictor`` with the network taken from ``networks``."""
    from forecasting.candidates import IntervalRecipe
    from forecasting.plan import PlanError, plan_predictor

    if served.recipe is None:  # pragma: no cover - callers check
        raise ValueError("no plan")
    recipe = IntervalRecipe.from_dict(served.recipe)
    if served.artifact is None or not (recipe.point == "lstm" or recipe.scale is None):
        return plan_predictor(served.recipe, served.artifact, horizon, threads=1)
    if recipe.state.horizon != horizon:
        raise PlanError(f"the plan has {recipe.state.horizon} steps, the symbol {horizon}")
    return networks.get(served).with_intervals(recipe)


async def served_many(session: AsyncSession, symbols: Sequence[str]) -> dict[str, Served]:
    """:func:`served_for` of several symbols in three queries (plans, champions, the distinct
    artifacts they need), for a refresh batch."""
    plans = await ServedPlanRepository(session).current_many(symbols)
    versions = ModelVersionRepository(session)
    champions = await versions.champion_ids(symbols)
    artifacts = {
        version_id: ModelArtifact(weights=row.weights, metadata=row.metadata)
        for version_id, row in (await versions.artifacts(list(champions.values()))).items()
    }
    served: dict[str, Served] = {}
    for symbol in symbols:
        champion = champions.get(symbol)
        artifact = artifacts.get(champion) if champion is not None else None
        plan = plans.get(symbol)
        if plan is None or (plan.uses_network and champion != plan.model_version_id):
            # No plan, or its network no longer serves (see served_for): the champion serves.
            served[symbol] = Served(artifact=artifact, version_id=champion if artifact else None)
            continue
        served[symbol] = Served(
            plan_id=plan.id,
            recipe=dict(plan.recipe),
            artifact=artifact if plan.uses_network else None,
            version_id=plan.model_version_id if plan.uses_network else None,
        )
    return served


def predict_served(
    records: list[BarRecord],
    served: Served,
    horizon: int,
    exchange: str,
    networks: NetworkCache | None = None,
) -> tuple[Forecast, list[dict[str, Any]] | None]:
    """Load the model (from ``networks`` when given) and predict (CPU work: runs in a worker
    thread); with a plan, also what its calibration needs per step."""
    from forecasting.plan import PlanError, issued_calibration
    from forecasting.predictor import NaivePredictor

    networks = networks or NetworkCache()
    bars = records_to_bars(records)
    if served.recipe is not None:
        try:
            predictor = _plan_predictor(served, horizon, networks)
        except PlanError as exc:
            logger.warning("%s; serving the naive baseline", exc)
        else:
            recipe = predictor.intervals
            if recipe is None:  # pragma: no cover - plan_predictor always sets one
                return predictor.predict(bars, exchange=exchange), None
            forecast, center, sigma = predictor.predict_with_basis(bars, exchange=exchange)
            return forecast, issued_calibration(recipe, center, sigma)
        return NaivePredictor.from_bars(bars, horizon).predict(bars, exchange=exchange), None
    if served.artifact is not None:
        return networks.get(served).predict(bars, exchange=exchange), None
    return NaivePredictor.from_bars(bars, horizon).predict(bars, exchange=exchange), None


def model_rows_needed(artifact: ModelArtifact | None, history: int) -> int:
    if artifact is None:
        return history
    lookback = int(artifact.metadata.get("model_config", {}).get("lookback", 0))
    return max(history, lookback + 1)


def step_records(
    forecast: Forecast, calibration: list[dict[str, Any]] | None
) -> list[ForecastStepRecord]:
    return [
        ForecastStepRecord(
            step=step.step,
            target_date=step.target_date,
            point=step.point,
            lower_80=step.lower_80,
            upper_80=step.upper_80,
            lower_95=step.lower_95,
            upper_95=step.upper_95,
            naive=step.naive,
            calibration=None if calibration is None else calibration[step.step - 1],
        )
        for step in forecast.steps
    ]


async def forecast_symbol(context: JobContext[SymbolArguments]) -> JobResult:
    runtime = context.runtime
    symbol = context.arguments.symbol
    async with runtime.sessions() as session:
        watched = await SymbolRepository(session).find(symbol)
        if watched is None or not watched.active:
            return Skipped(skipped=f"{symbol} is not on the watchlist")
        served = await served_for(session, symbol)
        records = await PriceRepository(session).load(
            symbol, last=model_rows_needed(served.artifact, runtime.config.forecast_history)
        )
        horizon, exchange = watched.horizon, watched.exchange
    if not records:
        raise NoPricesError(symbol)
    forecast, calibration = await anyio.to_thread.run_sync(
        predict_served, records, served, horizon, exchange, limiter=runtime.compute_limiter
    )
    if calibration is None and served.recipe is not None:
        served = Served()  # the plan could not serve (see the log): the naive baseline did
    steps = step_records(forecast, calibration)
    ready = ForecastReady(
        issued_at=utcnow(),
        model_kind=forecast.model_kind,
        model_version_id=served.version_id,
        steps=len(steps),
        last_observed_date=forecast.last_observed_date,
    )
    # Every step and the announcement commit together: readers see the whole new forecast or
    # the previous one, never half of each.
    async with runtime.sessions.begin() as session:
        await ForecastRepository(session).add_batch(
            symbol=symbol,
            model_version_id=ready.model_version_id,
            model_kind=ready.model_kind,
            issued_at=ready.issued_at,
            last_observed_date=ready.last_observed_date,
            last_close=forecast.last_close,
            steps=steps,
            served_plan_id=served.plan_id,
        )
        await EventRepository(session).append(ready, symbol=symbol)
    return ready
