"""The API as an ASGI application factory, for servers that build the app in their own worker
process (granian, or ``uvicorn --factory stockcast.asgi:create_app``).

The factory reads the settings from the environment, as every process does at start-up, and
sets up the same log format as the CLI: a server's worker is a fresh process that never ran
``stockcast.cli.main``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from stockcast.cli import LOG_FORMAT
from stockcast.settings import Settings

if TYPE_CHECKING:
    from litestar import Litestar


def create_app() -> Litestar:
    """A new API application configured from ``STOCKCAST_*`` (lifespan included: the database
    engine, the caches and the event stream open and close with the server)."""
    from stockcast.commands.service import web_config
    from web.app import create_app as build

    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)
    return build(web_config(settings))
