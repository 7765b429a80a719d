"""The Litestar application factory."""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

from web.config import WebConfig
from web.controllers.health import HealthController
from web.state import database_lifespan


def create_app(config: WebConfig) -> Litestar:
    """Build the API for ``config``; nothing connects until the lifespan starts."""
    return Litestar(
        route_handlers=[HealthController],
        lifespan=[database_lifespan(config)],
        openapi_config=OpenAPIConfig(
            title=config.title,
            version=config.version,
            description="Precomputed stock forecasts, measured against the naive forecast.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        ),
    )
