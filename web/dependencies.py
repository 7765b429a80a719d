"""Litestar dependency providers: each builds a service from the resources the lifespan opened.

Services are cheap objects over long-lived resources (session factory, caches, job queue), so
building one per request costs nothing and keeps handlers free of wiring.
"""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import Provide

from web.services.accuracy import AccuracyService
from web.services.forecasts import ForecastService
from web.services.jobs import JobService
from web.services.models import ModelService
from web.services.prediction import PredictionService
from web.services.training import TrainingService
from web.services.watchlist import WatchlistService
from web.state import AppResources


def _resources(state: State) -> AppResources:
    value = state.get("resources")
    if not isinstance(value, AppResources):
        raise RuntimeError("the API's lifespan has not opened its resources")
    return value


def provide_jobs(state: State) -> JobService:
    res = _resources(state)
    return JobService(res.sessions, res.queue)


def provide_watchlist(state: State) -> WatchlistService:
    res = _resources(state)
    return WatchlistService(
        res.sessions,
        JobService(res.sessions, res.queue),
        default_horizon=res.config.default_horizon,
        default_lookback=res.config.default_lookback,
    )


def provide_forecasts(state: State) -> ForecastService:
    # One per process, not per request: it coalesces concurrent cache misses.
    return _resources(state).forecasts


def forecast_service(state: State) -> ForecastService:
    """For the hot path, which reads it from the state itself (no dependency resolution)."""
    return _resources(state).forecasts


def provide_accuracy(state: State) -> AccuracyService:
    return AccuracyService(_resources(state).sessions)


def provide_models(state: State) -> ModelService:
    res = _resources(state)
    return ModelService(res.sessions, mlflow_ui_url=res.config.mlflow_ui_url)


def provide_training(state: State) -> TrainingService:
    res = _resources(state)
    return TrainingService(res.sessions, JobService(res.sessions, res.queue))


def provide_prediction(state: State) -> PredictionService:
    res = _resources(state)
    return PredictionService(
        res.sessions, models=res.models, prices=res.prices, metrics=res.metrics
    )


def provide_resources(state: State) -> AppResources:
    return _resources(state)


def provider(function: object) -> Provide:
    """``Provide`` for a plain synchronous factory (no thread hop: they only build objects)."""
    return Provide(function, sync_to_thread=False)  # type: ignore[arg-type]
