"""``stockcast up``: the whole service in one process on the embedded default.

Migrations first, then the scheduler and the API in one event loop, sharing one APScheduler
instance (and so one local event broker): a job the API enqueues wakes the worker at once. SQLite
file and a local MLflow store under ``STOCKCAST_DATA_DIR``; no server of any kind is needed.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from forecasting.sources import parse_source_spec
from forecasting.symbols import InvalidSymbolError, normalize_symbol
from stockcast.cli import CommandError
from stockcast.commands.scheduler import scheduler_config
from stockcast.commands.service import api_server, web_config
from stockcast.schema import upgrade_database
from stockcast.settings import Settings

logger = logging.getLogger(__name__)

API_KEY_FILE = "api-key"


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = subparsers.add_parser(
        "up",
        help="run everything in one process: migrations, API, scheduler (SQLite, local MLflow)",
        description=(
            "Runs the migrations, then the API and the scheduler in one process on the "
            "embedded default (a SQLite file and a local MLflow store under STOCKCAST_DATA_DIR). "
            "Creates an API key on first start. Ctrl-C stops it."
        ),
    )
    up.add_argument(
        "--source",
        help="price source: yfinance, csv:DIR or sample (offline); default STOCKCAST_SOURCE",
    )
    up.add_argument(
        "--watch",
        metavar="SYMBOLS",
        default="",
        help="comma-separated symbols to put on the watchlist at start, e.g. AAPL,SPY",
    )
    up.add_argument("--host", help="bind address (default: STOCKCAST_HOST or 127.0.0.1)")
    up.add_argument("--port", type=int, help="port (default: STOCKCAST_PORT or 8000)")
    up.set_defaults(handler=run_up)


def parse_watch_list(value: str) -> list[str]:
    """The symbols of ``--watch``, validated and de-duplicated in order."""
    symbols: list[str] = []
    for part in value.split(","):
        if not part.strip():
            continue
        try:
            symbol = normalize_symbol(part)
        except InvalidSymbolError as exc:
            raise CommandError(f"--watch: {exc}", status=2) from exc
        if symbol not in symbols:
            symbols.append(symbol)
    return symbols


def ensure_api_key(data_dir: Path) -> tuple[str, bool]:
    """The key kept in ``DATA_DIR/api-key``, created (owner-only) on first start.

    Returns the key and whether it was created now.
    """
    path = data_dir / API_KEY_FILE
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        if len(key) >= 16:
            return key, False
    key = secrets.token_urlsafe(24)
    data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key, True


def run_up(args: argparse.Namespace, settings: Settings) -> int:
    try:
        source = parse_source_spec(args.source) if args.source else settings.source
    except ValueError as exc:
        raise CommandError(f"--source: {exc}", status=2) from exc
    if args.port is not None and not 1 <= args.port <= 65535:
        raise CommandError("--port: expected an integer from 1 to 65535", status=2)
    watch = parse_watch_list(args.watch)
    key, created = ensure_api_key(settings.data_dir)
    settings = replace(
        settings,
        source=source,
        host=args.host or settings.host,
        port=args.port or settings.port,
        api_keys=(*settings.api_keys, key),
    )
    print(f"stockcast: migrating {settings.database_url} ...", flush=True)
    upgrade_database(settings.database_url)

    import anyio

    from scheduler.lock import SchedulerAlreadyRunningError

    try:
        anyio.run(_serve_all, settings, watch, key, created, backend="asyncio")
    except SchedulerAlreadyRunningError as exc:
        raise CommandError(str(exc)) from exc
    return 0


async def _serve_all(settings: Settings, watch: Sequence[str], key: str, key_created: bool) -> None:
    import anyio

    from scheduler.daemon import SchedulerDaemon
    from web.app import create_app

    daemon = SchedulerDaemon(scheduler_config(settings))
    daemon_done, api_done = anyio.Event(), anyio.Event()
    servers: list[Any] = []

    async def run_daemon(*, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            await daemon.run(task_status=task_status)
        finally:
            daemon_done.set()
            for server in servers:
                server.should_exit = True

    async with anyio.create_task_group() as group:
        await group.start(run_daemon)
        if daemon.scheduler is None:
            raise RuntimeError("the scheduler did not start")
        server = api_server(
            create_app(web_config(settings), scheduler=daemon.scheduler),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            handle_signals=False,
        )
        servers.append(server)

        async def serve_api() -> None:
            try:
                await server.serve()
            finally:
                api_done.set()
                daemon.request_stop()  # the API stopped (or failed to bind): stop it all

        async def stop_on_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    print("\nstockcast: stopping ...", file=sys.stderr, flush=True)
                    server.should_exit = True
                    # A second Ctrl-C stops waiting for running jobs.
                    daemon.request_stop(force=daemon.stop_requested)

        group.start_soon(stop_on_signals)
        group.start_soon(serve_api)
        while not server.started and not api_done.is_set():  # noqa: ASYNC110 - uvicorn has a flag, no event
            await anyio.sleep(0.05)
        if server.started:
            base = _local_base_url(settings)
            registered = await _register(base, key, watch)
            _print_banner(settings, base, key, key_created, registered)
        await daemon_done.wait()
        await api_done.wait()
        group.cancel_scope.cancel()


def _absolute_sqlite_uri(uri: str) -> str:
    """``sqlite:///var/mlflow.db`` as an absolute URI, so the printed command works anywhere."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri.removeprefix(prefix)).resolve())
    return uri


def _local_base_url(settings: Settings) -> str:
    host = settings.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - we connect, not bind
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


async def _register(base: str, key: str, symbols: Sequence[str]) -> list[str]:
    """Put ``symbols`` on the watchlist through the API itself (same checks, same jobs)."""
    import httpx

    lines: list[str] = []
    if not symbols:
        return lines
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for symbol in symbols:
            response = await client.post(
                "/symbols", json={"symbol": symbol}, headers={"X-API-Key": key}
            )
            if response.status_code == 201:
                lines.append(f"  {symbol}: added; backfill and first training queued")
            elif response.status_code == 409:
                lines.append(f"  {symbol}: already on the watchlist")
            else:
                detail = response.json().get("detail", response.text)
                lines.append(f"  {symbol}: NOT added ({response.status_code}: {detail})")
    return lines


def _print_banner(
    settings: Settings, base: str, key: str, key_created: bool, registered: list[str]
) -> None:
    data_dir = settings.data_dir.resolve()
    mlflow_ui = (
        f"{Path(sys.executable).parent / 'mlflow'} ui --backend-store-uri "
        f"{_absolute_sqlite_uri(settings.mlflow_tracking_uri)} --port 5000"
        "   then open http://127.0.0.1:5000"
        if settings.mlflow_ui_url is None
        else settings.mlflow_ui_url
    )
    lines = [
        "",
        "stockcast is up (API + scheduler in one process; Ctrl-C stops it)",
        f"  dashboard   {base}/",
        f"  API         {base}   (ready: {base}/ready)",
        f"  Swagger UI  {base}/schema/swagger",
        f"  API key     {key}"
        + ("   (new; kept in " if key_created else "   (from ")
        + f"{data_dir / API_KEY_FILE})",
        f"  data        {data_dir}   (source: {settings.source})",
        f"  MLflow UI   {mlflow_ui}",
    ]
    if registered:
        lines.append("watchlist:")
        lines.extend(registered)
    lines.append("")
    print("\n".join(lines), flush=True)
