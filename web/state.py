"""Resources the API opens in its lifespan and hands to handlers through ``app.state``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import create_async_db_engine, create_session_factory
from web.config import WebConfig


@dataclass(kw_only=True)
class AppResources:
    config: WebConfig
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


def resources(app: Litestar) -> AppResources:
    value = app.state.resources
    if not isinstance(value, AppResources):
        raise RuntimeError("the API's lifespan has not opened its resources")
    return value


def database_lifespan(config: WebConfig):  # type: ignore[no-untyped-def]
    """A lifespan that opens the engine on start-up and disposes of it on shutdown."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        engine = create_async_db_engine(config.database_url)
        app.state.resources = AppResources(
            config=config, engine=engine, sessions=create_session_factory(engine)
        )
        try:
            yield
        finally:
            await engine.dispose()

    return lifespan
