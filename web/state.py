"""Resources the API opens in its lifespan and hands to handlers through ``app.state``.

Start-up connects nothing that could fail: the engine is lazy, and the two background tasks (the
event tailer and the job queue's scheduler client) retry until the database is there. So the
process always starts and ``/ready`` can say what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from litestar import Litestar
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import create_async_db_engine, create_session_factory
from db.kinds import EventType
from web.cache import ForecastCache
from web.config import WebConfig
from web.events import EventHub
from web.prometheus import ApiMetrics
from web.queue import JobQueue
from web.schemas.events import EventOut
from web.services.forecasts import ForecastService
from web.services.prediction import ModelCache
from web.services.prices import PriceRefresher
from web.services.symbol_check import SymbolCheck

if TYPE_CHECKING:
    from apscheduler import AsyncScheduler

logger = logging.getLogger(__name__)

_SHUTDOWN_WAIT_S = 5.0
#: How long an API write waits for a SQLite write lock held elsewhere before it gives up with a
#: 503 (the scheduler's engine waits longer: it has nobody waiting on an answer).
API_BUSY_TIMEOUT_MS = 5_000


@dataclass(kw_only=True)
class AppResources:
    config: WebConfig
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: ForecastCache
    forecasts: ForecastService
    events: EventHub
    queue: JobQueue
    models: ModelCache
    prices: PriceRefresher
    metrics: ApiMetrics
    symbol_check: SymbolCheck


def app_resources(state: State) -> AppResources:
    """What the lifespan opened, from the app's state (for providers and lean handlers)."""
    value = state.get("resources")
    if not isinstance(value, AppResources):
        raise RuntimeError("the API's lifespan has not opened its resources")
    return value


def api_lifespan(
    config: WebConfig, metrics: ApiMetrics, *, scheduler: AsyncScheduler | None = None
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The lifespan: engine, caches, event tailer, job queue; all closed on shutdown.

    ``scheduler`` is an already-entered APScheduler shared with an in-process scheduler (the
    all-in-one mode, one local event broker); without it the API opens its own client.
    """

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        engine = create_async_db_engine(config.database_url, busy_timeout_ms=API_BUSY_TIMEOUT_MS)
        sessions = create_session_factory(engine)
        cache = ForecastCache(
            ttl_s=config.forecast_cache_ttl_s,
            # Shared caches may keep a forecast only when reads need no key.
            cache_control=(
                f"{'private' if config.require_key_for_reads else 'public'}, "
                f"max-age={config.forecast_max_age_s}"
            ),
        )
        hub = EventHub(
            sessions,
            poll_interval_s=config.event_poll_interval_s,
            gap_grace_s=config.event_gap_grace_s,
            listeners=[_invalidate_on_forecast(cache)],
        )
        queue = JobQueue(
            engine=engine,
            database_url=config.database_url,
            expected_revision=config.expected_revision,
            result_expiration_s=config.job_result_expiration_s,
            scheduler=scheduler,
        )
        state = AppResources(
            config=config,
            engine=engine,
            sessions=sessions,
            cache=cache,
            forecasts=ForecastService(sessions, cache),
            events=hub,
            queue=queue,
            models=ModelCache(config.model_cache_size, threads=config.inference_threads),
            prices=PriceRefresher(
                sessions,
                source_spec=config.source,
                timeout_s=config.source_timeout_s,
                cooldown_s=config.refresh_cooldown_s,
            ),
            metrics=metrics,
            symbol_check=SymbolCheck(source_spec=config.source, timeout_s=config.source_timeout_s),
        )
        metrics.watch(
            lambda: {
                "cache_hits": float(cache.hits),
                "cache_misses": float(cache.misses),
                "sse_clients": float(hub.subscriber_count),
                "events_position": float(hub.position or 0),
            }
        )
        app.state.resources = state
        tailer = asyncio.create_task(hub.run(), name="stockcast-event-tailer")
        client = asyncio.create_task(queue.run(), name="stockcast-job-queue")
        try:
            yield
        finally:
            hub.close()
            tailer.cancel()
            await queue.stop()
            await _finish([tailer, client])
            await engine.dispose()

    return lifespan


def _invalidate_on_forecast(cache: ForecastCache) -> Callable[[EventOut], None]:
    def listener(event: EventOut) -> None:
        # forecast.evaluated too: the latest forecast's ``serving`` block shows the calibration
        # the evaluate job just updated.
        refreshing = (EventType.FORECAST_READY.value, EventType.FORECAST_EVALUATED.value)
        if event.type in refreshing and event.symbol is not None:
            cache.invalidate(event.symbol)

    return listener


async def _finish(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for the tasks to end (the job queue closes its scheduler client); cancel any that
    takes longer than it should."""
    done, pending = await asyncio.wait(tasks, timeout=_SHUTDOWN_WAIT_S)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=task.exception())
