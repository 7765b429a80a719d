"""Start-up reconciliation: the jobs a dead node left running, and the model registry.

A training registers its MLflow model version in the child process and the worker records it in
``model_versions`` afterwards; a node killed between the two left a registered version that no
row knows (``killme`` v1 in issue 14). At start-up each worker node tags such versions
``stockcast.orphan`` (``forecasting.tracking.mark_orphan_versions``), so the registry and the
database agree on what was trained.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Final

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import JobFailed
from db.models import JobRun, JobStatus, ModelVersion, SchedulerHeartbeat
from db.repositories import EventRepository, JobRepository
from forecasting.tracking import mark_orphan_versions
from scheduler.config import SchedulerConfig

logger = logging.getLogger(__name__)

#: On a shared PostgreSQL another node may be between registering a version and recording it:
#: only versions older than this are judged. On SQLite this node is the only one.
CLUSTER_GRACE_S: Final = 600.0


async def reconcile_orphan_versions(
    sessions: async_sessionmaker[AsyncSession], config: SchedulerConfig, *, identity: str
) -> list[tuple[str, int]]:
    """Tag the registry's versions that no ``model_versions`` row records; returns them. A
    registry that cannot be reached costs a warning, never the node's start."""
    tracking_uri = config.training.tracking_uri
    if not tracking_uri:
        return []
    async with sessions() as session:
        rows = await session.execute(
            select(ModelVersion.registry_name, ModelVersion.registry_version).where(
                ModelVersion.registry_name.is_not(None),
                ModelVersion.registry_version.is_not(None),
            )
        )
        recorded = [
            (str(name), int(version)) for name, version in rows.all() if version is not None
        ]
    reconcile = partial(
        mark_orphan_versions,
        tracking_uri,
        recorded,
        older_than_s=0.0 if config.is_sqlite else CLUSTER_GRACE_S,
        note=f"registered without a model_versions row; found at start-up of {identity}",
    )
    try:
        marked = await anyio.to_thread.run_sync(reconcile)
    except Exception as exc:
        # TrackingError mostly; also whatever MLflow raises while it creates or migrates its
        # store (two nodes starting on one SQLite store race on its migrations).
        logger.warning("model registry not reconciled: %s", exc)
        return []
    for name, version in marked:
        logger.warning("MLflow %s v%d has no model_versions row: tagged orphaned", name, version)
    return marked


async def record_abandoned_attempts(
    sessions: async_sessionmaker[AsyncSession], config: SchedulerConfig, *, identity: str
) -> list[str]:
    """Record, at a node's start, the jobs that ``job_runs`` says are running on a node that is
    gone: status ``abandoned``, the reason, and a ``job.failed`` event. Returns their ids.

    Gone: on SQLite, every other node (one process holds the file's scheduler lock, so a node
    that held it before is dead); on PostgreSQL, a node without a heartbeat for three heartbeat
    intervals (and at least a lease). APScheduler may later run the same job again (its lease
    expired) and its record then shows that run; the ``job.failed`` event keeps the attempt.
    """
    now = datetime.now(UTC)
    patience = max(3 * config.heartbeat_interval, config.lease_duration)
    cutoff = now if config.is_sqlite else now - timedelta(seconds=patience)
    abandoned: list[str] = []
    async with sessions.begin() as session:
        alive = select(SchedulerHeartbeat.node).where(SchedulerHeartbeat.beat_at > cutoff)
        rows = (
            (
                await session.execute(
                    select(JobRun).where(
                        JobRun.status == JobStatus.RUNNING,
                        JobRun.worker.is_not(None),
                        JobRun.worker != identity,
                        JobRun.worker.not_in(alive),
                    )
                )
            )
            .scalars()
            .all()
        )
        jobs, events = JobRepository(session), EventRepository(session)
        for row in rows:
            error = (
                f"abandoned: worker {row.worker} stopped during attempt {row.attempts} "
                f"(found at the start of {identity})"
            )
            if await jobs.finish(row.id, status=JobStatus.ABANDONED, error=error):
                await events.append(
                    JobFailed(
                        job_id=row.id,
                        kind=row.kind,
                        status=JobStatus.ABANDONED.value,
                        error=error,
                        attempts=row.attempts,
                    ),
                    symbol=row.symbol,
                )
                abandoned.append(row.id)
                logger.warning("%s job %s (%s): %s", row.kind, row.id, row.symbol or "-", error)
    return abandoned
