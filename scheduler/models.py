"""Recording a trained challenger in the service database: the model version, its artifact, the
gate's verdict and the events, in one transaction; then the MLflow ``champion`` alias.

The retrain task and the ``stockcast train`` command both call :func:`record_training_outcome`,
so a model trained from the command line is served exactly like one trained by the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import create_async_db_engine, create_session_factory
from db.kinds import EventType
from db.models import ModelStatus
from db.repositories import EventRepository, ModelVersionRepository, NewModelVersion
from forecasting.artifacts import ModelArtifact

if TYPE_CHECKING:
    from forecasting.training import TrainingOutcome

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Why a challenger that passed the gate was not promoted after all.
LOST_RACE_REASON = (
    "passed the gate, but another version of this symbol was promoted while it trained; "
    "retrain to compare against the new champion"
)


@dataclass(frozen=True, kw_only=True)
class RecordedModel:
    """What became of a challenger once recorded."""

    model_version_id: int
    symbol: str
    promoted: bool
    reason: str
    previous_champion_id: int | None
    alias_set: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_version_id": self.model_version_id,
            "symbol": self.symbol,
            "promoted": self.promoted,
            "reason": self.reason,
            "previous_champion_id": self.previous_champion_id,
            "alias_set": self.alias_set,
        }


def baseline_blocks(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """``naive_mase`` ... -> ``{"naive": {"mase": ...}, "drift": {...}}``."""
    blocks: dict[str, dict[str, float]] = {"naive": {}, "drift": {}}
    for key, value in metrics.items():
        model, _, name = key.partition("_")
        if model in blocks and name:
            blocks[model][name] = value
    return blocks


async def record_training_outcome(
    sessions: async_sessionmaker[AsyncSession],
    *,
    symbol: str,
    outcome: TrainingOutcome,
    params: dict[str, Any],
    model_name: str | None = None,
    job_id: str | None = None,
    tracking_uri: str | None = None,
) -> RecordedModel:
    """Store the challenger and apply the gate's decision atomically.

    The version, its artifact, its status (champion or rejected, with the reason) and the events
    ``model.trained`` + ``model.promoted``/``model.rejected`` commit together: a crash leaves the
    previous champion serving. The partial unique index on champions turns a concurrent
    promotion of the same symbol into an ``IntegrityError``; the challenger is then recorded as
    rejected (it was judged against a champion that no longer serves). The MLflow alias moves only
    after the commit, and a tracking failure does not undo the promotion.
    """
    new = NewModelVersion(
        symbol=symbol,
        weights=outcome.artifact.weights,
        metadata=outcome.artifact.metadata,
        model_name=model_name,
        mlflow_run_id=outcome.mlflow_run_id,
        registry_name=outcome.registry_name,
        registry_version=outcome.registry_version,
        params=params,
        metrics=outcome.metrics,
        baseline_metrics=baseline_blocks(outcome.metrics),
        backtest=outcome.backtest,
        train_start=outcome.data_start,
        train_end=outcome.data_end,
        training_seconds=outcome.training_seconds,
        job_id=job_id,
    )
    decision = outcome.decision
    try:
        recorded = await _record(sessions, new, promote=decision.promote, reason=decision.reason)
    except IntegrityError:
        logger.warning("promotion of a %s challenger lost a race; recording it rejected", symbol)
        recorded = await _record(sessions, new, promote=False, reason=LOST_RACE_REASON)
    alias_set = False
    if recorded.promoted and tracking_uri and outcome.registry_version is not None:
        alias_set = await _set_alias(tracking_uri, symbol, outcome)
    return RecordedModel(
        model_version_id=recorded.model_version_id,
        symbol=symbol,
        promoted=recorded.promoted,
        reason=recorded.reason,
        previous_champion_id=recorded.previous_champion_id,
        alias_set=alias_set,
    )


async def _record(
    sessions: async_sessionmaker[AsyncSession],
    new: NewModelVersion,
    *,
    promote: bool,
    reason: str,
) -> RecordedModel:
    async with sessions.begin() as session:
        versions = ModelVersionRepository(session)
        events = EventRepository(session)
        row = await versions.add(new)
        await events.append(
            EventType.MODEL_TRAINED,
            symbol=new.symbol,
            payload={
                "model_version_id": row.id,
                "job_id": new.job_id,
                "metrics": new.metrics,
                "train_start": new.train_start.isoformat() if new.train_start else None,
                "train_end": new.train_end.isoformat() if new.train_end else None,
            },
        )
        previous_id: int | None = None
        if promote:
            previous = await versions.promote(row.id)
            previous_id = previous.id if previous is not None else None
            await events.append(
                EventType.MODEL_PROMOTED,
                symbol=new.symbol,
                payload={
                    "model_version_id": row.id,
                    "previous_champion_id": previous_id,
                    "reason": reason,
                    "metrics": new.metrics,
                },
            )
        else:
            await versions.reject(row.id, reason)
            await events.append(
                EventType.MODEL_REJECTED,
                symbol=new.symbol,
                payload={"model_version_id": row.id, "reason": reason, "metrics": new.metrics},
            )
        status = ModelStatus.CHAMPION if promote else ModelStatus.REJECTED
        logger.info("%s model version %d recorded as %s: %s", new.symbol, row.id, status, reason)
        return RecordedModel(
            model_version_id=row.id,
            symbol=new.symbol,
            promoted=promote,
            reason=reason,
            previous_champion_id=previous_id,
            alias_set=False,
        )


async def _set_alias(tracking_uri: str, symbol: str, outcome: TrainingOutcome) -> bool:
    from forecasting.tracking import TrackingError, set_champion_alias

    version = outcome.registry_version
    if version is None:
        return False
    try:
        await anyio.to_thread.run_sync(
            partial(
                set_champion_alias,
                tracking_uri,
                symbol,
                version,
                model_name=outcome.registry_name,
            )
        )
    except TrackingError as exc:
        # The database is the source of truth for serving; the registry alias catches up at the
        # next promotion.
        logger.error("could not move the MLflow champion alias of %s: %s", symbol, exc)
        return False
    return True


async def service_champion(
    sessions: async_sessionmaker[AsyncSession], symbol: str
) -> tuple[int, ModelArtifact] | None:
    """The symbol's serving champion (model version id and artifact), as the retrain job reads it."""
    async with sessions() as session:
        versions = ModelVersionRepository(session)
        champion = await versions.champion(symbol)
        if champion is None:
            return None
        row = await versions.artifact(champion.id)
        return champion.id, ModelArtifact(weights=row.weights, metadata=row.metadata_json)


def run_with_database(
    database_url: str,
    work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]],
) -> T:
    """Run ``work`` with sessions on ``database_url`` from synchronous code (the CLI)."""

    async def main() -> T:
        engine = create_async_db_engine(database_url)
        try:
            return await work(create_session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())
