"""Keeping APScheduler's schedules in step with the watchlist.

Each exchange with an active symbol has ``refresh:MIC`` (after every close: its symbols are
refreshed in batches, ``scheduler.refresh``), and each active symbol ``retrain:SYM`` (at its
cadence). A new symbol on an exchange already watched adds only its retrain schedule. With
``global_retrain_cadence`` set there is one ``retrain_global`` too (after the default exchange's
last close of each week or month); unset, a sync removes it. Older deployments' per-symbol
``ingest:SYM`` schedules are still ours: a sync removes them. Registration is idempotent: a
schedule whose signature (trigger settings, misfire grace) is unchanged is left alone, so its
pending fire time survives a restart and a scheduler that was down catches up once (coalescing
``latest``); a changed one is replaced; schedules of symbols no longer watched are removed.
Schedules with other ids are not ours and never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from apscheduler import (
    AsyncScheduler,
    CoalescePolicy,
    ConflictPolicy,
    Schedule,
    ScheduleLookupError,
)
from apscheduler.abc import Trigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import JobRequest, SyncResult
from db.kinds import JobKind, schedule_id
from db.models import RetrainCadence, WatchedSymbol
from db.repositories import SymbolRepository
from forecasting.calendar import DEFAULT_EXCHANGE
from scheduler.config import SchedulerConfig
from scheduler.triggers import SessionCloseTrigger

logger = logging.getLogger(__name__)

#: The schedules this module owns: per exchange (refresh), per symbol (retrain), and the per-symbol
#: ingest schedules of older deployments (only ever removed).
MANAGED_KINDS: Final = (JobKind.REFRESH, JobKind.RETRAIN, JobKind.INGEST)
#: The periodic safety net that re-syncs even if a watchlist change's sync job was lost.
SYNC_SCHEDULE_ID: Final = "sync_schedules"
#: The global retrain's schedule (one for the whole watchlist, so no symbol in its id).
GLOBAL_RETRAIN_SCHEDULE_ID: Final = JobKind.RETRAIN_GLOBAL.value
SIGNATURE_KEY: Final = "stockcast_signature"


@dataclass(frozen=True, kw_only=True)
class DesiredSchedule:
    id: str
    kind: JobKind
    trigger: Trigger
    kwargs: dict[str, Any]
    misfire_grace: float
    signature: str


def is_managed(schedule_id_: str) -> bool:
    """Whether a sync owns the schedule: adds, replaces and removes it."""
    return schedule_id_ == GLOBAL_RETRAIN_SCHEDULE_ID or managed_symbol(schedule_id_) is not None


def managed_symbol(schedule_id_: str) -> str | None:
    """The symbol (or, for ``refresh``, the exchange) of a schedule this module owns
    (``retrain:DIS`` -> ``DIS``), else None."""
    kind, sep, symbol = schedule_id_.partition(":")
    if sep and symbol and kind in {k.value for k in MANAGED_KINDS}:
        return symbol
    return None


def desired_schedules(
    symbols: Sequence[WatchedSymbol], config: SchedulerConfig
) -> list[DesiredSchedule]:
    """The schedules the watchlist calls for: one refresh per exchange, one retrain per symbol."""
    desired: list[DesiredSchedule] = []
    for exchange in sorted({watched.exchange for watched in symbols}):
        refresh = SessionCloseTrigger(
            exchange=exchange,
            delay=timedelta(seconds=config.ingest_delay),
            cadence=RetrainCadence.DAILY,
        )
        desired.append(
            _desired(JobRequest.refresh(exchange), exchange, refresh, config.ingest_misfire_grace)
        )
    for watched in symbols:
        retrain = SessionCloseTrigger(
            exchange=watched.exchange,
            delay=timedelta(seconds=config.retrain_delay),
            cadence=RetrainCadence(watched.retrain_cadence),
        )
        desired.append(
            _desired(
                JobRequest.retrain(watched.symbol),
                watched.symbol,
                retrain,
                config.retrain_misfire_grace,
            )
        )
    if config.global_retrain_cadence is not None:
        desired.append(_global_retrain(config.global_retrain_cadence, config))
    return desired


def _global_retrain(cadence: RetrainCadence, config: SchedulerConfig) -> DesiredSchedule:
    """The global retrain after the default exchange's closes at ``cadence``, with the per-symbol
    retrains' delay and grace: its data is the same day's refreshed bars."""
    trigger = SessionCloseTrigger(
        exchange=DEFAULT_EXCHANGE,
        delay=timedelta(seconds=config.retrain_delay),
        cadence=cadence,
    )
    return _desired(
        JobRequest.retrain_global(),
        None,
        trigger,
        config.retrain_misfire_grace,
        schedule=GLOBAL_RETRAIN_SCHEDULE_ID,
    )


def _desired(
    request: JobRequest,
    key: str | None,
    trigger: SessionCloseTrigger,
    grace: float,
    *,
    schedule: str | None = None,
) -> DesiredSchedule:
    """``request`` on ``trigger``; its id is ``kind:key``, or ``schedule`` when given."""
    return DesiredSchedule(
        id=schedule if schedule is not None else schedule_id(request.kind, str(key)),
        kind=request.kind,
        trigger=trigger,
        kwargs=request.kwargs,
        misfire_grace=grace,
        signature=f"{trigger.signature.as_text()};grace={grace:g}",
    )


async def sync_schedules(
    scheduler: AsyncScheduler,
    sessions: async_sessionmaker[AsyncSession],
    config: SchedulerConfig,
) -> SyncResult:
    """Make the managed schedules match the active watchlist; safe to run at any time, twice.

    One schedule that cannot be registered (an unknown exchange, say) is reported in ``failed``
    and must not keep the others unscheduled or a node from starting.
    """
    async with sessions() as session:
        symbols = await SymbolRepository(session).list(active=True)
    existing: dict[str, Schedule] = {
        schedule.id: schedule
        for schedule in await scheduler.get_schedules()
        if is_managed(schedule.id)
    }
    added: list[str] = []
    replaced: list[str] = []
    failed: dict[str, str] = {}
    unchanged = 0
    for wanted in desired_schedules(symbols, config):
        current = existing.pop(wanted.id, None)
        if current is not None and current.metadata.get(SIGNATURE_KEY) == wanted.signature:
            unchanged += 1
            continue
        problem = await _register(scheduler, wanted, config)
        if problem is not None:
            failed[wanted.id] = problem
            continue
        (added if current is None else replaced).append(wanted.id)
    removed = sorted(existing)
    for stale in removed:
        await scheduler.remove_schedule(stale)
    return SyncResult(
        added=added, replaced=replaced, removed=removed, unchanged=unchanged, failed=failed
    )


async def _register(
    scheduler: AsyncScheduler, wanted: DesiredSchedule, config: SchedulerConfig
) -> str | None:
    """Add or replace one schedule; the reason it cannot be registered, if it cannot."""
    try:
        await scheduler.add_schedule(
            wanted.kind.value,
            wanted.trigger,
            id=wanted.id,
            kwargs=wanted.kwargs,
            coalesce=CoalescePolicy.latest,
            misfire_grace_time=timedelta(seconds=wanted.misfire_grace),
            metadata={SIGNATURE_KEY: wanted.signature},
            job_result_expiration_time=timedelta(seconds=config.job_result_expiration),
            conflict_policy=ConflictPolicy.replace,
        )
    except ValueError as exc:  # the trigger's first fire time: e.g. an unknown exchange
        logger.error("cannot schedule %s: %s", wanted.id, exc)
        return str(exc)
    return None


async def register_sync_schedule(scheduler: AsyncScheduler, config: SchedulerConfig) -> None:
    """The periodic safety sync; replaced only when its interval changes."""
    signature = f"interval={config.schedule_sync_interval:g}"
    try:
        current = await scheduler.get_schedule(SYNC_SCHEDULE_ID)
    except ScheduleLookupError:
        pass
    else:
        if current.metadata.get(SIGNATURE_KEY) == signature:
            return
    interval = timedelta(seconds=config.schedule_sync_interval)
    await scheduler.add_schedule(
        JobKind.SYNC_SCHEDULES.value,
        # The first sync runs at start-up, directly; the schedule is the safety net after it.
        IntervalTrigger(
            seconds=config.schedule_sync_interval, start_time=datetime.now(UTC) + interval
        ),
        id=SYNC_SCHEDULE_ID,
        coalesce=CoalescePolicy.latest,
        misfire_grace_time=timedelta(seconds=config.schedule_sync_interval),
        metadata={SIGNATURE_KEY: signature},
        conflict_policy=ConflictPolicy.replace,
    )
