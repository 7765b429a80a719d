"""The Litestar application factory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.static_files import create_static_files_router

from web.auth import STATE_KEY, ApiKeyChecker, counts_against_rate_limit, require_api_key
from web.config import WebConfig
from web.controllers.dashboard import DashboardPlugin
from web.controllers.events import EventsController
from web.controllers.forecast_batch import LatestForecastsController
from web.controllers.forecasts import ForecastsController
from web.controllers.global_training import GlobalTrainingController
from web.controllers.health import HealthController
from web.controllers.jobs import JobsController
from web.controllers.model_versions import ModelsController
from web.controllers.ondemand import OnDemandController
from web.controllers.prometheus import MetricsController
from web.controllers.replay import ReplayController
from web.controllers.symbols import SymbolsController
from web.errors import problem_details_plugin
from web.openapi import (
    STATIC_DIRECTORY,
    STATIC_PATH,
    StrictPayloadSchemaPlugin,
    openapi_config,
)
from web.options import before_request
from web.prometheus import ApiMetrics
from web.state import api_lifespan

if TYPE_CHECKING:
    from apscheduler import AsyncScheduler


def create_app(config: WebConfig, *, scheduler: AsyncScheduler | None = None) -> Litestar:
    """Build the API for ``config``; nothing connects until the lifespan starts.

    ``scheduler``: an APScheduler already entered by an in-process scheduler (``stockcast up``),
    which the API then enqueues through (one local event broker for both); without it the API
    opens its own client of the data store.
    """
    metrics = ApiMetrics()
    # Per app, not per class: the limit is configuration. Keyed by client address; its store is
    # the app's own in-memory one (a limit per API process).
    on_demand_limit = RateLimitConfig(
        rate_limit=("minute", config.rate_limit_per_minute),
        check_throttle_handler=counts_against_rate_limit,
    )
    # Write handlers carry the key guard themselves; reads get it here, only when configured. A
    # guard costs every request it applies to (Litestar copies the handler for each call), so
    # open reads - the cached forecast above all - do not pay for one.
    read_guards = [require_api_key] if config.require_key_for_reads else []
    return Litestar(
        route_handlers=[
            HealthController,
            Router(
                path="/",
                guards=read_guards,
                route_handlers=[
                    SymbolsController,
                    ForecastsController,
                    LatestForecastsController,
                    JobsController,
                    ModelsController,
                    EventsController,
                    MetricsController,
                    ReplayController,
                ],
            ),
            Router(
                path="/",
                guards=read_guards,
                route_handlers=[OnDemandController, GlobalTrainingController],
                middleware=[on_demand_limit.middleware],
            ),
            create_static_files_router(
                path=STATIC_PATH, directories=[STATIC_DIRECTORY], include_in_schema=False
            ),
        ],
        before_request=before_request,
        lifespan=[api_lifespan(config, metrics, scheduler=scheduler)],
        # The process sets up logging (one format for the whole run: stockcast.cli); Litestar's
        # default config would replace the root handler with its own format at start-up.
        # Unexpected errors are logged by web.errors with their tracebacks.
        logging_config=None,
        middleware=[metrics.middleware()],
        plugins=[problem_details_plugin(), DashboardPlugin(), StrictPayloadSchemaPlugin()],
        state=State(
            {
                STATE_KEY: ApiKeyChecker(
                    config.api_keys, require_for_reads=config.require_key_for_reads
                )
            }
        ),
        openapi_config=openapi_config(
            title=config.title,
            version=config.version,
            keys_for_reads=config.require_key_for_reads,
        ),
    )
