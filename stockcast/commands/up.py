"""``stockcast up``: the whole service in one process on the embedded default.

Migrations first, then the scheduler and the API in one event loop, sharing one APScheduler
instance (and so one local event broker): a job the API enqueues wakes the worker at once. SQLite
file and a local MLflow store under ``STOCKCAST_DATA_DIR``; no server of any kind is needed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
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
from scheduler.config import ReplaySettings
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
    replay = up.add_mutually_exclusive_group()
    replay.add_argument(
        "--replay",
        dest="replay",
        action="store_const",
        const="on",
        help="replay a static source (sample or csv:DIR) as a simulated market "
        "(default with the sample; STOCKCAST_REPLAY=auto|on|off)",
    )
    replay.add_argument(
        "--no-replay", dest="replay", action="store_const", const="off", help="no market replay"
    )
    up.add_argument(
        "--replay-sessions",
        type=int,
        metavar="N",
        help="start the replay N sessions before the end of the data "
        "(default: STOCKCAST_REPLAY_SESSIONS or 60)",
    )
    up.add_argument(
        "--replay-step",
        type=float,
        metavar="SECONDS",
        help="advance one session every SECONDS (default: STOCKCAST_REPLAY_STEP_SECONDS or 5)",
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
    replay = replay_settings(args, settings, source)
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

    from db.apscheduler_workarounds import SchedulerAlreadyRunningError

    try:
        anyio.run(_serve_all, settings, watch, key, created, replay, backend="asyncio")
    except SchedulerAlreadyRunningError as exc:
        raise CommandError(str(exc)) from exc
    return 0


def replay_settings(
    args: argparse.Namespace, settings: Settings, source: str
) -> ReplaySettings | None:
    """The market replay ``up`` runs, if any: on by default with the sample, on request with a
    CSV directory, never with a live source (``--replay`` with yfinance is an error)."""
    sessions = (
        args.replay_sessions if args.replay_sessions is not None else settings.replay_sessions
    )
    step = args.replay_step if args.replay_step is not None else settings.replay_step_seconds
    if not 1 <= sessions <= 100_000:
        raise CommandError("--replay-sessions: expected an integer from 1 to 100000", status=2)
    if not 0.1 <= step <= 3600:  # also refuses nan
        raise CommandError("--replay-step: expected a number of seconds from 0.1 to 3600", status=2)
    mode = getattr(args, "replay", None) or settings.replay
    if mode == "off" or (mode == "auto" and source != "sample"):
        return None
    if source == "yfinance":
        raise CommandError(
            "--replay: a market replay needs a static source (--source sample or csv:DIR); "
            "yfinance is live",
            status=2,
        )
    return ReplaySettings(sessions=sessions, step_seconds=step)


async def _serve_all(
    settings: Settings,
    watch: Sequence[str],
    key: str,
    key_created: bool,
    replay: ReplaySettings | None,
) -> None:
    import anyio

    from scheduler.daemon import SchedulerDaemon
    from web.app import create_app

    daemon = SchedulerDaemon(replace(scheduler_config(settings), replay=replay))
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
            _print_banner(settings, base, key, key_created, registered, replay=replay)
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


def _mlflow_ui_command(tracking_uri: str) -> str:
    """How to open the local store in the MLflow UI. The UI is the full ``mlflow`` distribution
    (the ``server`` extra, which ``make up`` installs); the service itself needs only the client."""
    try:
        importlib.metadata.version("mlflow")
    except importlib.metadata.PackageNotFoundError:
        return "pip install 'stockcast[server]' to get the `mlflow ui` command for this store"
    return (
        f"{Path(sys.executable).parent / 'mlflow'} ui --backend-store-uri "
        f"{_absolute_sqlite_uri(tracking_uri)} --port 5000   then open http://127.0.0.1:5000"
    )


def _print_banner(
    settings: Settings,
    base: str,
    key: str,
    key_created: bool,
    registered: list[str],
    *,
    replay: ReplaySettings | None = None,
) -> None:
    data_dir = settings.data_dir.resolve()
    mlflow_ui = settings.mlflow_ui_url or _mlflow_ui_command(settings.mlflow_tracking_uri)
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
    if replay is not None:
        lines.append(
            f"  replay      a simulated market: from {replay.sessions} sessions before the end of "
            f"the data, one session every {replay.step_seconds:g} s (GET {base}/replay; "
            "--no-replay turns it off)"
        )
    if registered:
        lines.append("watchlist:")
        lines.extend(registered)
    lines.append("")
    print("\n".join(lines), flush=True)
