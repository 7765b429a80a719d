"""``stockcast api`` (and ``python -m web``): run the long-lived processes."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from stockcast.cli import LOG_FORMAT, CommandError
from stockcast.redaction import install_access_log_redaction
from stockcast.schema import head_revision
from stockcast.settings import API_SERVERS, Settings
from web.config import WebConfig

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api = subparsers.add_parser("api", help="serve the HTTP API (uvicorn or granian)")
    api.add_argument("--host", help="bind address (default: STOCKCAST_HOST or 127.0.0.1)")
    api.add_argument("--port", type=int, help="port (default: STOCKCAST_PORT or 8000)")
    api.add_argument(
        "--server",
        choices=API_SERVERS,
        help="ASGI server (default: STOCKCAST_API_SERVER or granian)",
    )
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


def api_server(app: Any, *, host: str, port: int, log_level: str, handle_signals: bool) -> Any:
    """A uvicorn server that exits normally after a graceful stop.

    uvicorn re-raises SIGTERM/SIGINT once it has shut down, so the process dies of the signal
    (exit 143 under ``docker stop``) even though it stopped cleanly. Here the first signal starts
    the graceful stop, a second one forces it, and the process then exits 0. With
    ``handle_signals=False`` the caller owns the signals (``stockcast up`` stops the scheduler and
    the API together).
    """
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if not handle_signals or threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self._stop) for sig in STOP_SIGNALS}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

        def _stop(self, sig: int, frame: FrameType | None) -> None:
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=True,
        lifespan="on",
        # uvicorn's own logging config would print its lines in another format; without it
        # they reach the root logger and the service's one format.
        log_config=None,
    )
    # After the Config: it configures uvicorn's loggers when it is made.
    install_access_log_redaction()
    return Server(config)


def run_api(args: argparse.Namespace, settings: Settings) -> int:
    host, port = args.host or settings.host, args.port or settings.port
    if (args.server or settings.api_server) == "granian":
        return run_granian(host=host, port=port, log_level=settings.log_level.lower())
    from web.app import create_app

    server = api_server(
        create_app(web_config(settings)),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        handle_signals=True,
    )
    server.run()
    return 0 if server.started else 1


def run_granian(*, host: str, port: int, log_level: str) -> int:
    """Serve the API with granian: its HTTP stack is Rust (hyper), and its worker builds the app
    through ``stockcast.asgi.create_app``, lifespan included. One worker, like uvicorn here:
    more workers would each hold their own caches and model copies. Granian handles SIGINT and
    SIGTERM itself (a graceful stop, exit 0)."""
    try:
        from granian import Granian
        from granian.constants import Interfaces
        from granian.log import LogLevels
    except ImportError:
        raise CommandError("granian is not installed: pip install granian") from None
    Granian(
        "stockcast.asgi:create_app",
        factory=True,
        interface=Interfaces.ASGI,
        address=host,
        port=port,
        workers=1,
        log_level=LogLevels(log_level),
        log_dictconfig=_granian_logging(log_level),
        log_access=False,
    ).serve()
    return 0


def _granian_logging(level: str) -> dict[str, Any]:
    """Granian's logging with the service's one line format, for its own messages and (through
    the root logger) the app's, so a run does not switch formats halfway."""
    formatter = {"()": "logging.Formatter", "fmt": LOG_FORMAT}
    return {
        "formatters": {"generic": formatter, "access": formatter},
        "root": {"handlers": ["console"], "level": level.upper()},
    }
