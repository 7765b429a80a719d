"""Repositories: every query the scheduler and the API need, one class per table.

A repository works inside the caller's session and only flushes; the caller owns the transaction
(``async with session.begin(): ...``) so several repository calls commit or roll back together.
"""

from __future__ import annotations

from db.repositories.events import EventRepository
from db.repositories.forecasts import ForecastRepository, ForecastStepRecord, NewForecast
from db.repositories.heartbeats import HeartbeatRepository
from db.repositories.jobs import JobNotFoundError, JobRepository
from db.repositories.model_versions import (
    ModelVersionNotFoundError,
    ModelVersionRepository,
    NewModelVersion,
    StoredArtifact,
)
from db.repositories.prices import BarRecord, PriceRepository
from db.repositories.served_plans import LiveCoverage, NewServedPlan, ServedPlanRepository
from db.repositories.symbols import (
    SymbolAlreadyWatchedError,
    SymbolNotFoundError,
    SymbolRepository,
    SymbolsAlreadyWatchedError,
    SymbolsNotFoundError,
)

__all__ = [
    "BarRecord",
    "EventRepository",
    "ForecastRepository",
    "ForecastStepRecord",
    "HeartbeatRepository",
    "JobNotFoundError",
    "JobRepository",
    "LiveCoverage",
    "ModelVersionNotFoundError",
    "ModelVersionRepository",
    "NewForecast",
    "NewModelVersion",
    "NewServedPlan",
    "PriceRepository",
    "ServedPlanRepository",
    "StoredArtifact",
    "SymbolAlreadyWatchedError",
    "SymbolNotFoundError",
    "SymbolRepository",
    "SymbolsAlreadyWatchedError",
    "SymbolsNotFoundError",
]
