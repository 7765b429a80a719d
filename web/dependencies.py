"""Litestar dependency providers: each builds a service from the resources the lifespan opened.

Services are cheap objects over long-lived resources (session factory, caches, job queue), so
building one per request costs nothing and keeps handlers free of wiring. Every provider is a
plain synchronous factory, registered with :func:`provider`.
"""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import Provide

from web.services.accuracy import AccuracyService
from web.services.dashboard import DashboardService
from web.services.event_stream import EventStreamService
from web.services.forecasts import ForecastService
from web.services.global_training import GlobalTrainingService
from web.services.jobs import JobService
from web.services.model_versions import ModelVersionService
from web.services.prediction import PredictionService
from web.services.replay import ReplayService
from web.services.scrape import ScrapeService
from web.services.training import TrainingService
from web.services.watchlist import WatchlistService
from web.state import app_resources


def provide_jobs(state: State) -> JobService:
    res = app_resources(state)
    return JobService(res.sessions, res.queue)


def provide_watchlist(state: State) -> WatchlistService:
    res = app_resources(state)
    return WatchlistService(
        res.sessions,
        provide_jobs(state),
        default_horizon=res.config.default_horizon,
        default_lookback=res.config.default_lookback,
        check_symbol=res.symbol_check.ensure_available,
    )


def forecast_service(state: State) -> ForecastService:
    """One per process, not per request: it coalesces concurrent cache misses. The hot path calls
    this itself (no dependency resolution); the other handlers get it injected."""
    return app_resources(state).forecasts


def provide_accuracy(state: State) -> AccuracyService:
    return AccuracyService(app_resources(state).sessions)


def provide_model_versions(state: State) -> ModelVersionService:
    res = app_resources(state)
    return ModelVersionService(res.sessions, mlflow_ui_url=res.config.mlflow_ui_url)


def provide_training(state: State) -> TrainingService:
    return TrainingService(app_resources(state).sessions, provide_jobs(state))


def provide_global_training(state: State) -> GlobalTrainingService:
    return GlobalTrainingService(app_resources(state).sessions, provide_jobs(state))


def provide_prediction(state: State) -> PredictionService:
    res = app_resources(state)
    return PredictionService(
        res.sessions, models=res.models, prices=res.prices, metrics=res.metrics
    )


def provide_dashboard(state: State) -> DashboardService:
    return DashboardService(app_resources(state).sessions)


def provide_event_stream(state: State) -> EventStreamService:
    res = app_resources(state)
    return EventStreamService(res.sessions, res.events, heartbeat_s=res.config.sse_heartbeat_s)


def provide_replay(state: State) -> ReplayService:
    return ReplayService(app_resources(state).sessions)


def provide_scrape(state: State) -> ScrapeService:
    res = app_resources(state)
    return ScrapeService(res.sessions, res.metrics)


def provider(function: object) -> Provide:
    """``Provide`` for a plain synchronous factory (no thread hop: they only build objects)."""
    return Provide(function, sync_to_thread=False)  # type: ignore[arg-type]
