"""The service database's record of trained models: reading a symbol's serving champion, and
recording a trained challenger (the model version, its artifact, the gate's verdict, the served
plan it makes and the events, in one transaction; then the MLflow ``champion`` alias).

The retrain and forecast jobs and the ``stockcast train`` command all go through here, so a model
trained from the command line is judged and served exactly like one trained by the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import ModelPromoted, ModelRejected, ModelTrained, RecordedModel
from db.engine import create_async_db_engine, create_session_factory
from db.models import ModelStatus
from db.repositories import (
    EventRepository,
    ModelVersionRepository,
    NewModelVersion,
    NewServedPlan,
    ServedPlanRepository,
)
from forecasting.artifacts import ModelArtifact
from forecasting.plan import PlanError, PlanSpec, plan_from_artifact, plan_from_decision

if TYPE_CHECKING:
    from forecasting.gate import GateDecision
    from forecasting.training import TrainingOutcome

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Why a challenger that passed the gate was not promoted after all.
LOST_RACE_REASON = (
    "passed the gate, but another version of this symbol was promoted while it trained; "
    "retrain to compare against the new champion"
)


@dataclass(frozen=True, kw_only=True)
class Champion:
    """A symbol's serving model: its version id and its artifact (weights + metadata)."""

    version_id: int
    artifact: ModelArtifact


async def load_champion(session: AsyncSession, symbol: str) -> Champion | None:
    """The symbol's champion with its artifact, or ``None`` while the naive baseline serves it."""
    versions = ModelVersionRepository(session)
    champion = await versions.champion(symbol)
    if champion is None:
        return None
    row = await versions.artifact(champion.id)
    return Champion(
        version_id=champion.id,
        artifact=ModelArtifact(weights=row.weights, metadata=row.metadata_json),
    )


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
        recorded = await _record(
            sessions, new, promote=decision.promote, reason=decision.reason, decision=decision
        )
    except IntegrityError:
        logger.warning("promotion of a %s challenger lost a race; recording it rejected", symbol)
        # Judged against a champion that no longer serves: its plan is not made either.
        recorded = await _record(sessions, new, promote=False, reason=LOST_RACE_REASON)
    alias_set = False
    if recorded.promoted and tracking_uri and outcome.registry_version is not None:
        alias_set = await _set_alias(tracking_uri, symbol, outcome)
    return msgspec.structs.replace(recorded, alias_set=alias_set)


async def _record(
    sessions: async_sessionmaker[AsyncSession],
    new: NewModelVersion,
    *,
    promote: bool,
    reason: str,
    decision: GateDecision | None = None,
) -> RecordedModel:
    async with sessions.begin() as session:
        versions = ModelVersionRepository(session)
        events = EventRepository(session)
        row = await versions.add(new)
        await events.append(
            ModelTrained(
                model_version_id=row.id,
                job_id=new.job_id,
                metrics=new.metrics,
                train_start=new.train_start,
                train_end=new.train_end,
            ),
            symbol=new.symbol,
        )
        previous_id: int | None = None
        if promote:
            previous = await versions.promote(row.id)
            previous_id = previous.id if previous is not None else None
            await events.append(
                ModelPromoted(
                    model_version_id=row.id,
                    previous_champion_id=previous_id,
                    reason=reason,
                    metrics=new.metrics,
                ),
                symbol=new.symbol,
            )
        else:
            await versions.reject(row.id, reason)
            await events.append(
                ModelRejected(model_version_id=row.id, reason=reason, metrics=new.metrics),
                symbol=new.symbol,
            )
        plan_id = None if decision is None else await _record_plan(session, new, row.id, decision)
        status = ModelStatus.CHAMPION if promote else ModelStatus.REJECTED
        logger.info("%s model version %d recorded as %s: %s", new.symbol, row.id, status, reason)
        return RecordedModel(
            model_version_id=row.id,
            symbol=new.symbol,
            promoted=promote,
            reason=reason,
            previous_champion_id=previous_id,
            alias_set=False,
            served_plan_id=plan_id,
        )


#: The status reason of a champion the gate demoted.
DEMOTED_REASON = "demoted at a retrain: {reason}"


def _new_plan(symbol: str, version_id: int | None, spec: PlanSpec) -> NewServedPlan:
    return NewServedPlan(
        symbol=symbol,
        model_version_id=version_id,
        candidate=spec.candidate,
        point=spec.point,
        scale=spec.scale,
        uses_network=spec.uses_network,
        recalibrated=spec.recalibrated,
        reason=spec.reason,
        recipe=spec.recipe,
        evidence=spec.evidence,
    )


async def _record_plan(
    session: AsyncSession, new: NewModelVersion, version_id: int, decision: GateDecision
) -> int | None:
    """The served plan the decision makes, in the transaction that records it. A demoted
    champion stops serving: it is retired, and the simple candidate the gate selected is planned.
    A kept champion keeps its plan (one is made from its artifact if it has none yet)."""
    plans = ServedPlanRepository(session)
    versions = ModelVersionRepository(session)
    try:
        spec = plan_from_decision(decision, new.metadata, new.backtest)
    except (PlanError, KeyError, TypeError, ValueError) as exc:
        # The version and the verdict are still recorded; the forecast job serves the champion
        # as it is when the plan does not name it.
        logger.error("%s: no served plan recorded for version %d: %s", new.symbol, version_id, exc)
        return None
    if spec is not None:
        if not decision.promote and decision.champion == "demoted":
            champion = await versions.champion(new.symbol)
            if champion is not None:
                await versions.retire(champion.id, DEMOTED_REASON.format(reason=decision.reason))
        return (await plans.add(_new_plan(new.symbol, version_id, spec))).id
    if await plans.current(new.symbol) is not None:
        return None
    return await _plan_for_kept_champion(session, new.symbol, decision)


async def _plan_for_kept_champion(
    session: AsyncSession, symbol: str, decision: GateDecision
) -> int | None:
    """A plan from the champion's own artifact, for a champion recorded before plans existed."""
    versions = ModelVersionRepository(session)
    champion = await versions.champion(symbol)
    if champion is None:
        return None
    artifact = await versions.artifact(champion.id)
    try:
        legacy = plan_from_artifact(
            artifact.metadata_json,
            champion.backtest or {},
            reason=f"the champion stays ({decision.reason})",
        )
    except (KeyError, TypeError, ValueError) as exc:
        logger.error("%s: the champion's artifact makes no plan: %s", symbol, exc)
        return None
    if legacy is None:
        return None
    return (await ServedPlanRepository(session).add(_new_plan(symbol, champion.id, legacy))).id


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
) -> Champion | None:
    """The symbol's serving champion, read in a session of its own (for the CLI)."""
    async with sessions() as session:
        return await load_champion(session, symbol)


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
