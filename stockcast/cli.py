"""The ``stockcast`` command: parses arguments, reads settings once, and dispatches to a sub-command.

Each area registers its own sub-commands (``stockcast.commands.*.add_commands``); a handler takes the
parsed arguments and the settings and returns the exit status. Errors the user can fix (a bad
``STOCKCAST_*`` value, an unknown symbol, an unreachable database) end as one line on stderr and a
non-zero status, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Protocol

from stockcast.settings import Settings, SettingsError

#: The one log line format of every process (the CLI, and the API's server workers).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Modules under ``stockcast.commands`` that contribute sub-commands, in ``--help`` order.
COMMAND_MODULES = ("up", "service", "scheduler", "db", "model", "health")

EXIT_USAGE = 2


class CommandError(Exception):
    """A failure the user can act on; printed as one line, exit status ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class Handler(Protocol):
    def __call__(self, args: argparse.Namespace, settings: Settings) -> int: ...


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stockcast",
        description=(
            "Scheduled stock forecasting: ingest daily prices, retrain an LSTM per symbol, "
            "serve precomputed forecasts. Configured by STOCKCAST_* environment variables."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        _load_command_module(name).add_commands(subparsers)
    return parser


class _CommandModule(Protocol):
    add_commands: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]


def _load_command_module(name: str) -> _CommandModule:
    # Imported by name so each area's heavy imports stay inside its handlers.
    module: _CommandModule = importlib.import_module(f"stockcast.commands.{name}")
    return module


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"stockcast: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=settings.log_level,
        format=LOG_FORMAT,
    )
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except CommandError as exc:
        print(f"stockcast: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
