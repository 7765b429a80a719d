"""Keeping APScheduler's schedules in step with the watchlist.

Each active symbol has ``ingest:SYM`` (after every close of its exchange) and ``retrain:SYM`` (at
its cadence). Registration is idempotent: a schedule whose signature (trigger settings, misfire
grace) is unchanged is left alone, so its pending fire time survives a restart and a scheduler
that was down catches up once (coalescing ``latest``); a changed one is replaced; schedules of
symbols no longer watched are removed. Schedules with other ids are not ours and never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
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

from db.kinds import JobKind, schedule_id
from db.models import WatchedSymbol
from db.repositories import SymbolRepository
from scheduler.config import SchedulerConfig
from scheduler.triggers import Cadence, SessionCloseTrigger

logger = logging.getLogger(__name__)

#: The per-symbol schedules this module owns.
MANAGED_KINDS: Final = (JobKind.INGEST, JobKind.RETRAIN)
#: The periodic safety net that re-syncs even if a watchlist change's sync job was lost.
SYNC_SCHEDULE_ID: Final = "sync_schedules"
SIGNATURE_KEY: Final = "stockcast_signature"


@dataclass(frozen=True, kw_only=True)
class DesiredSchedule:
    id: str
    kind: JobKind
    trigger: Trigger
    kwargs: dict[str, Any]
    misfire_grace: float
    signature: str


@dataclass(kw_only=True)
class SyncReport:
    """What a sync changed, by schedule id."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    #: Schedules that could not be registered, with the reason (one bad symbol, e.g. an unknown
    #: exchange, must not keep the others unscheduled or a node from starting).
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "replaced": self.replaced,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "failed": self.failed,
        }


def managed_symbol(schedule_id_: str) -> str | None:
    """The symbol of a schedule this module owns (``ingest:DIS`` -> ``DIS``), else None."""
    kind, sep, symbol = schedule_id_.partition(":")
    if sep and symbol and kind in {k.value for k in MANAGED_KINDS}:
        return symbol
    return None


def desired_schedules(
    symbols: Sequence[WatchedSymbol], config: SchedulerConfig
) -> list[DesiredSchedule]:
    """The schedules the watchlist calls for."""
    desired: list[DesiredSchedule] = []
    for watched in symbols:
        ingest = SessionCloseTrigger(
            exchange=watched.exchange,
            delay=timedelta(seconds=config.ingest_delay),
            cadence=Cadence.DAILY,
        )
        retrain = SessionCloseTrigger(
            exchange=watched.exchange,
            delay=timedelta(seconds=config.retrain_delay),
            cadence=Cadence(watched.retrain_cadence.value),
        )
        for kind, trigger, kwargs, grace in (
            (JobKind.INGEST, ingest, {"symbol": watched.symbol}, config.ingest_misfire_grace),
            (
                JobKind.RETRAIN,
                retrain,
                {"symbol": watched.symbol, "params": {}},
                config.retrain_misfire_grace,
            ),
        ):
            desired.append(
                DesiredSchedule(
                    id=schedule_id(kind, watched.symbol),
                    kind=kind,
                    trigger=trigger,
                    kwargs=kwargs,
                    misfire_grace=grace,
                    signature=f"{trigger.signature.as_text()};grace={grace:g}",
                )
            )
    return desired


async def sync_schedules(
    scheduler: AsyncScheduler,
    sessions: async_sessionmaker[AsyncSession],
    config: SchedulerConfig,
) -> SyncReport:
    """Make the managed schedules match the active watchlist; safe to run at any time, twice."""
    async with sessions() as session:
        symbols = await SymbolRepository(session).list(active=True)
    existing: dict[str, Schedule] = {
        schedule.id: schedule
        for schedule in await scheduler.get_schedules()
        if managed_symbol(schedule.id) is not None
    }
    report = SyncReport()
    for wanted in desired_schedules(symbols, config):
        current = existing.pop(wanted.id, None)
        if current is not None and current.metadata.get(SIGNATURE_KEY) == wanted.signature:
            report.unchanged += 1
            continue
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
            report.failed[wanted.id] = str(exc)
            continue
        (report.added if current is None else report.replaced).append(wanted.id)
    for stale in sorted(existing):
        await scheduler.remove_schedule(stale)
        report.removed.append(stale)
    return report


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
