"""The forecast job (champion model, or the naive baseline, -> one stored row per horizon step) and
the evaluate job (fill in the actual closes of forecasts whose target day has passed)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import anyio

from db.base import utcnow
from db.kinds import EventType
from db.repositories import (
    BarRecord,
    EventRepository,
    ForecastRepository,
    ForecastStepRecord,
    ModelVersionRepository,
    PriceRepository,
    SymbolRepository,
)
from forecasting.artifacts import ModelArtifact
from scheduler.conversions import records_to_bars
from scheduler.runner import JobContext

if TYPE_CHECKING:
    from forecasting.forecast import Forecast


class NoPricesError(LookupError):
    """A forecast was asked for a symbol whose prices were never ingested."""

    def __init__(self, symbol: str) -> None:
        super().__init__(f"no prices stored for {symbol}; run an ingest first")
        self.symbol = symbol


def _predict(
    records: list[BarRecord], artifact: ModelArtifact | None, horizon: int, exchange: str
) -> Forecast:
    """Load the model and predict (CPU work: runs in a worker thread)."""
    from forecasting.predictor import LSTMPredictor, NaivePredictor

    bars = records_to_bars(records)
    if artifact is not None:
        return LSTMPredictor.from_artifact(artifact).predict(bars, exchange=exchange)
    return NaivePredictor.from_bars(bars, horizon).predict(bars, exchange=exchange)


def _model_rows_needed(artifact: ModelArtifact | None, history: int) -> int:
    if artifact is None:
        return history
    lookback = int(artifact.metadata.get("model_config", {}).get("lookback", 0))
    return max(history, lookback + 1)


async def forecast_symbol(context: JobContext) -> dict[str, Any]:
    runtime = context.runtime
    symbol = context.symbol
    if symbol is None:
        raise ValueError("forecast needs a symbol")
    async with runtime.sessions() as session:
        watched = await SymbolRepository(session).find(symbol)
        if watched is None or not watched.active:
            return {"skipped": f"{symbol} is not on the watchlist"}
        versions = ModelVersionRepository(session)
        champion = await versions.champion(symbol)
        artifact: ModelArtifact | None = None
        if champion is not None:
            row = await versions.artifact(champion.id)
            artifact = ModelArtifact(weights=row.weights, metadata=row.metadata_json)
        records = await PriceRepository(session).load(
            symbol, last=_model_rows_needed(artifact, runtime.config.forecast_history)
        )
        horizon, exchange = watched.horizon, watched.exchange
    if not records:
        raise NoPricesError(symbol)
    forecast = await anyio.to_thread.run_sync(_predict, records, artifact, horizon, exchange)
    issued_at = utcnow()
    model_version_id = champion.id if champion is not None else None
    steps = [
        ForecastStepRecord(
            step=step.step,
            target_date=step.target_date,
            point=step.point,
            lower_80=step.lower_80,
            upper_80=step.upper_80,
            lower_95=step.lower_95,
            upper_95=step.upper_95,
            naive=step.naive,
        )
        for step in forecast.steps
    ]
    # Every step and the announcement commit together: readers see the whole new forecast or
    # the previous one, never half of each.
    async with runtime.sessions.begin() as session:
        await ForecastRepository(session).add_batch(
            symbol=symbol,
            model_version_id=model_version_id,
            model_kind=forecast.model_kind,
            issued_at=issued_at,
            last_observed_date=forecast.last_observed_date,
            last_close=forecast.last_close,
            steps=steps,
        )
        await EventRepository(session).append(
            EventType.FORECAST_READY,
            symbol=symbol,
            payload={
                "issued_at": issued_at.isoformat(),
                "model_kind": forecast.model_kind,
                "model_version_id": model_version_id,
                "steps": len(steps),
                "last_observed_date": forecast.last_observed_date.isoformat(),
            },
        )
    return {
        "issued_at": issued_at.isoformat(),
        "model_kind": forecast.model_kind,
        "model_version_id": model_version_id,
        "steps": len(steps),
        "last_observed_date": forecast.last_observed_date.isoformat(),
    }


async def evaluate_symbol(context: JobContext) -> dict[str, Any]:
    runtime = context.runtime
    symbol = context.symbol
    if symbol is None:
        raise ValueError("evaluate needs a symbol")
    async with runtime.sessions.begin() as session:
        prices = PriceRepository(session)
        up_to: date | None = await prices.last_date(symbol)
        if up_to is None:
            return {"filled": 0}
        forecasts = ForecastRepository(session)
        matured = await forecasts.matured_unevaluated(symbol, up_to)
        if not matured:
            return {"filled": 0, "up_to": up_to.isoformat()}
        closes = await prices.closes_on(symbol, {row.target_date for row in matured})
        filled = await forecasts.record_actuals(matured, closes)
        if filled:
            await EventRepository(session).append(
                EventType.FORECAST_EVALUATED,
                symbol=symbol,
                payload={"filled": filled, "up_to": up_to.isoformat(), "job_id": context.job_id},
            )
    return {"filled": filled, "up_to": up_to.isoformat()}
