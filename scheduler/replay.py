"""The market replay's driver: advances the simulated clock and queues what each session calls for.

Live, ``ingest:SYM`` fires after every close of the symbol's exchange and ``retrain:SYM`` after the
closes its cadence picks (:class:`~scheduler.triggers.SessionCloseTrigger`). In a replay those
closes are simulated ones, so this task does what the triggers would have done: after each
simulated session it queues every watched symbol's ingest (which queues the forecast and the
evaluation when a new bar arrived), and the retraining of the symbols whose cadence ends on that
session. A job already queued or running for a symbol is not queued twice, so a slow training
never piles up behind a fast clock. Each move is a ``replay.advanced`` event: the API, the
dashboard and the event stream read the simulated date from there, and a restart resumes at it.

The wall-clock schedules stay registered: an ingest they fire in a replay asks for bars up to the
simulated session, which are already stored, and changes nothing.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from functools import partial

import anyio
import anyio.to_thread
import msgspec
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import JobRequest, ReplayAdvanced, RetrainParams
from db.enqueue import enqueue_jobs
from db.kinds import EventType, JobKind
from db.models import RetrainCadence
from db.repositories import EventRepository, JobRepository, ModelVersionRepository, SymbolRepository
from forecasting.replay import ReplayClock, ReplayPosition, ReplaySource, replay_clock
from forecasting.sources import CsvSource, PriceSource
from scheduler.config import ReplaySettings
from scheduler.runner import until_stored
from scheduler.runtime import WorkerRuntime
from scheduler.triggers import session_ends_period

logger = logging.getLogger(__name__)


class ReplayNeedsStaticSourceError(ValueError):
    """A replay was asked of a live source: there is nothing to replay."""

    def __init__(self, source: str) -> None:
        super().__init__(f"a market replay needs a static source (sample or csv:DIR), not {source}")


async def build_replay(
    source: PriceSource, settings: ReplaySettings, *, resume_at: date | None
) -> tuple[ReplayClock, ReplaySource]:
    """The clock over ``source``'s sessions and the source seen through it (reads every file
    once, in a worker thread)."""
    if not isinstance(source, CsvSource):
        raise ReplayNeedsStaticSourceError(source.name)
    clock = await anyio.to_thread.run_sync(
        partial(replay_clock, source, sessions_before_end=settings.sessions, resume_at=resume_at)
    )
    return clock, ReplaySource(source, clock)


async def resume_point(sessions: async_sessionmaker[AsyncSession]) -> date | None:
    """Where the last run's replay stood (its newest ``replay.advanced`` event), if any."""
    async with sessions() as session:
        event = await EventRepository(session).latest_of_type(EventType.REPLAY_ADVANCED.value)
    if event is None:
        return None
    try:
        return msgspec.convert(event.payload, ReplayAdvanced).session
    except msgspec.ValidationError:
        return None


async def run_replay(runtime: WorkerRuntime, clock: ReplayClock, settings: ReplaySettings) -> None:
    """Announce the start, then advance one session every ``step_seconds`` until the data ends."""
    position = clock.position
    await _play(runtime, position, retrain=False)
    logger.info(
        "market replay at %s (session %d of %d); one session every %g s until %s",
        position.session,
        position.index + 1,
        position.total,
        settings.step_seconds,
        position.last,
    )
    while not position.finished:
        await anyio.sleep(settings.step_seconds)
        advanced = clock.advance()
        if advanced is None:
            break
        position = advanced
        await _play(runtime, position, retrain=True)
    logger.info("market replay finished: the data ends on %s", position.session)


async def _play(runtime: WorkerRuntime, position: ReplayPosition, *, retrain: bool) -> None:
    """Announce a session and queue its jobs, waiting out a database that cannot be written (a
    locked SQLite file, killed connections). When it stays unavailable past the store's patience
    the session is skipped, not the replay: the next session's ingest fetches every bar up to
    its own date, so nothing is lost but one announcement."""

    async def write() -> None:
        await queue_session_jobs(runtime, position.session, retrain=retrain, announce=position)

    try:
        await until_stored(write, what=f"the replay's session {position.session}")
    except (OperationalError, InterfaceError) as exc:
        logger.warning(
            "market replay: session %s skipped, database unavailable: %s", position.session, exc
        )


async def _announce(session: AsyncSession, position: ReplayPosition) -> None:
    await EventRepository(session).append(
        ReplayAdvanced(
            session=position.session,
            index=position.index,
            total=position.total,
            first=position.first,
            last=position.last,
            finished=position.finished,
        )
    )


async def queue_session_jobs(
    runtime: WorkerRuntime,
    session_day: date,
    *,
    retrain: bool,
    announce: ReplayPosition | None = None,
) -> None:
    """After the simulated close of ``session_day``: each watched symbol's ingest, and its
    retraining where its cadence ends on that session (never a second one of either).

    ``announce`` is written in the transaction that records the jobs: a reader that sees the
    session (the last one, "finished") also sees its jobs queued, never an idle queue between
    the two."""
    requests: list[JobRequest] = []
    async with runtime.sessions() as session:
        jobs = JobRepository(session)
        models = ModelVersionRepository(session)
        for watched in await SymbolRepository(session).list():
            symbol = watched.symbol
            # An ingest already running may have fetched up to the previous session: only a
            # queued one (it reads the clock when it starts) makes this session's redundant.
            if not await jobs.has_pending(symbol=symbol, kind=JobKind.INGEST.value, running=False):
                requests.append(JobRequest.for_symbol(JobKind.INGEST, symbol))
            if (
                retrain
                and session_ends_period(
                    session_day, RetrainCadence(watched.retrain_cadence), watched.exchange
                )
                and await models.list(symbol=symbol, limit=1)
                and not await jobs.has_pending(symbol=symbol, kind=JobKind.RETRAIN.value)
            ):
                requests.append(JobRequest.retrain(symbol, RetrainParams()))
    along_with = partial(_announce, position=announce) if announce is not None else None
    if requests:
        await enqueue_jobs(
            runtime.scheduler,
            runtime.sessions,
            requests,
            result_expiration=timedelta(seconds=runtime.config.job_result_expiration),
            along_with=along_with,
        )
    elif along_with is not None:
        async with runtime.sessions.begin() as session:
            await along_with(session)
