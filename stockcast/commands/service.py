"""``stockcast api`` (and ``python -m web``): run the long-lived processes."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from stockcast.schema import head_revision
from stockcast.settings import Settings
from web.config import WebConfig

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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

    return Server(
        uvicorn.Config(
            app, host=host, port=port, log_level=log_level, proxy_headers=True, lifespan="on"
        )
    )


def run_api(args: argparse.Namespace, settings: Settings) -> int:
    from web.app import create_app

    server = api_server(
        create_app(web_config(settings)),
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level=settings.log_level.lower(),
        handle_signals=True,
    )
    server.run()
    return 0 if server.started else 1
