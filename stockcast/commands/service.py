"""``stockcast api`` (and ``python -m web``): run the long-lived processes."""

from __future__ import annotations

import argparse

from stockcast.schema import head_revision
from stockcast.settings import Settings
from web.config import WebConfig


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api = subparsers.add_parser("api", help="serve the HTTP API with uvicorn")
    api.add_argument("--host", help="bind address (default: STOCKCAST_HOST or 127.0.0.1)")
    api.add_argument("--port", type=int, help="port (default: STOCKCAST_PORT or 8000)")
    api.set_defaults(handler=run_api)


def web_config(settings: Settings) -> WebConfig:
    """The API's configuration, taken from the settings."""
    return WebConfig(
        database_url=settings.database_url,
        expected_revision=head_revision(),
        api_keys=settings.api_keys,
        require_key_for_reads=settings.require_key_for_reads,
        source=settings.source,
        rate_limit_per_minute=settings.rate_limit_per_minute,
        default_horizon=settings.default_horizon,
        default_lookback=settings.default_lookback,
        # A local store has no UI to link to until someone runs `mlflow ui` on it.
        mlflow_ui_url=settings.mlflow_ui_url,
    )


def run_api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from web.app import create_app

    app = create_app(web_config(settings))
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )
    return 0
