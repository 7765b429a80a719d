"""``stockcast db ...``: migrate the database and show where it stands."""

from __future__ import annotations

import argparse

from sqlalchemy.exc import DBAPIError, OperationalError

from db.engine import first_line
from stockcast.cli import CommandError
from stockcast.schema import database_revision, head_revision, upgrade_database
from stockcast.settings import Settings


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("db", help="database schema: upgrade, current")
    db_commands = parser.add_subparsers(dest="db_command", metavar="ACTION")
    db_commands.required = True
    upgrade = db_commands.add_parser(
        "upgrade",
        help="run the migrations to head and create APScheduler's tables (once, before the nodes)",
    )
    upgrade.set_defaults(handler=run_upgrade)
    current = db_commands.add_parser("current", help="show the database's schema revision")
    current.add_argument(
        "--check", action="store_true", help="exit with status 1 unless the database is at head"
    )
    current.set_defaults(handler=show_current)


def run_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    try:
        revision = upgrade_database(settings.database_url)
    except (OperationalError, DBAPIError) as exc:
        raise CommandError(_unreachable(settings, exc)) from exc
    print(f"database {_display(settings)} is at revision {revision} (head); scheduler tables ready")
    return 0


def show_current(args: argparse.Namespace, settings: Settings) -> int:
    try:
        revision = database_revision(settings.database_url)
    except (OperationalError, DBAPIError) as exc:
        raise CommandError(_unreachable(settings, exc)) from exc
    head = head_revision()
    if revision is None:
        print(f"none (database {_display(settings)} is not migrated; run `stockcast db upgrade`)")
    elif revision == head:
        print(f"{revision} (head)")
    else:
        print(f"{revision} (head is {head}; run `stockcast db upgrade`)")
    return 0 if revision == head or not args.check else 1


def _display(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def _unreachable(settings: Settings, exc: Exception) -> str:
    reason = first_line(getattr(exc, "orig", None) or exc)
    return f"cannot use database {_display(settings)}: {reason}"
