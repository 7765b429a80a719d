"""``stockcast health``: whether the stockcast service running here is healthy, for every role.

The image's ``HEALTHCHECK`` runs it in each container, whatever the container's command. The
role comes from the service process's own command line (``stockcast api``, ``stockcast scheduler``,
``stockcast up``, ``python -m web``, ``python -m scheduler``); ``--role`` and ``--pid`` name them
where the guess would be wrong. The checks:

- ``api``: ``GET /health`` on the API's address (``--host``/``--port`` on the process's command
  line, else ``STOCKCAST_HOST``/``STOCKCAST_PORT``) answers 200 within 3 seconds;
- ``scheduler``: the scheduler process is running (neither a zombie nor stopped), and the database
  (``STOCKCAST_DATABASE_URL``) answers ``SELECT 1`` within 3 seconds;
  and the node's heartbeat (``scheduler_heartbeats``, written by the node every 10 seconds) is
  younger than a minute: a running process whose loop is stuck or cannot write is unhealthy;
- ``up``: both, since one process is the API and the scheduler.

One line per check says what was found; the exit status is 0 when every check passed and 1
otherwise. It starts no app and loads no model (about a second of CPU), so it can run every half
minute beside the service.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from stockcast.settings import Settings

ROLES: Final = ("api", "scheduler", "up")
TIMEOUT_SECONDS: Final = 3.0
#: A scheduler whose newest heartbeat is older than this is unhealthy (it beats every 10 s).
HEARTBEAT_MAX_AGE_SECONDS: Final = 60.0
#: ``python -m MODULE`` entry points of the service roles.
_MODULE_ROLES: Final = {"web": "api", "scheduler": "scheduler"}


@dataclass(frozen=True, kw_only=True)
class ServiceProcess:
    """A running stockcast service: its process id, role and command line."""

    pid: int
    #: None when the command line does not say (a process named by ``--pid``).
    role: str | None
    argv: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """One check's verdict and what it found, printed as one line."""

    name: str
    healthy: bool
    detail: str

    def line(self) -> str:
        return f"{self.name}: {'ok' if self.healthy else 'FAILED'}: {self.detail}"


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "health",
        help="check the stockcast service running here (the Docker HEALTHCHECK of every role)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--role", choices=ROLES, help="the role to check (default: the service process's)"
    )
    parser.add_argument(
        "--pid", type=int, help="the service process (default: the first stockcast service found)"
    )
    parser.set_defaults(handler=run_health)


def service_role(argv: Sequence[str]) -> str | None:
    """The role a command line runs (``api``, ``scheduler`` or ``up``), or None."""
    for index, part in enumerate(argv[:-1]):
        following = argv[index + 1]
        if part == "-m" and following != "stockcast":
            return _MODULE_ROLES.get(following)
        if Path(part).name == "stockcast":  # the console script, or `python -m stockcast`
            return following if following in ROLES else None
    return None


def option_value(argv: Sequence[str], option: str) -> str | None:
    """The value of ``--option VALUE`` or ``--option=VALUE`` on a command line (the last one)."""
    value: str | None = None
    for index, part in enumerate(argv):
        if part == option and index + 1 < len(argv):
            value = argv[index + 1]
        elif part.startswith(option + "="):
            value = part.removeprefix(option + "=")
    return value


def find_service(*, pid: int | None = None, role: str | None = None) -> ServiceProcess | None:
    """The process ``pid``, or else the service process (of ``role``, if given) with the lowest
    id: in a container, its main process. None if there is no such process."""
    import psutil

    def described(process: psutil.Process) -> ServiceProcess | None:
        try:
            argv = tuple(process.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        return ServiceProcess(pid=process.pid, role=service_role(argv), argv=argv)

    if pid is not None:
        try:
            return described(psutil.Process(pid))
        except psutil.NoSuchProcess:
            return None
    found = (described(p) for p in psutil.process_iter() if p.pid != os.getpid())
    services = (s for s in found if s is not None and s.role is not None)
    return min((s for s in services if role in (None, s.role)), key=lambda s: s.pid, default=None)


def check_api(base_url: str) -> CheckResult:
    """``GET {base_url}/health`` answers 200."""
    import urllib.error
    import urllib.request

    url = f"{base_url}/health"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - our own http URL
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return CheckResult(name="http", healthy=False, detail=f"GET {url}: {reason}")
    return CheckResult(name="http", healthy=status == 200, detail=f"GET {url} -> {status}")


def check_process(pid: int) -> CheckResult:
    """The process exists and is neither a zombie nor stopped."""
    import psutil

    try:
        status = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return CheckResult(name="process", healthy=False, detail=f"process {pid} is gone")
    dead = (psutil.STATUS_ZOMBIE, psutil.STATUS_STOPPED, psutil.STATUS_DEAD)
    return CheckResult(
        name="process", healthy=status not in dead, detail=f"process {pid} is {status}"
    )


def check_database(database_url: str) -> CheckResult:
    """The database answers ``SELECT 1``; a SQLite file that does not exist is not created."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    from db.engine import sync_url

    url = sync_url(database_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        if not url.database or not Path(url.database).expanduser().exists():
            return CheckResult(name="database", healthy=False, detail=f"{shown}: no such file")
        connect_args: dict[str, float] = {"timeout": TIMEOUT_SECONDS}
    else:
        connect_args = {"connect_timeout": max(1, int(TIMEOUT_SECONDS))}
    engine = create_engine(url, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        first_line = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0]
        return CheckResult(name="database", healthy=False, detail=f"{shown}: {first_line}")
    finally:
        engine.dispose()
    return CheckResult(name="database", healthy=True, detail=f"{shown} answers")


def check_heartbeat(
    database_url: str,
    *,
    host: str,
    pid: int | None,
    max_age: float = HEARTBEAT_MAX_AGE_SECONDS,
    now: datetime | None = None,
) -> CheckResult:
    """The scheduler node on ``host`` (process ``pid``, when known) beat within ``max_age``."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.exc import SQLAlchemyError

    from db.engine import sync_url
    from db.models import SchedulerHeartbeat

    url = sync_url(database_url)
    query = (
        select(SchedulerHeartbeat.node, SchedulerHeartbeat.beat_at)
        .where(SchedulerHeartbeat.host == host)
        .order_by(SchedulerHeartbeat.beat_at.desc())
        .limit(1)
    )
    if pid is not None:
        query = query.where(SchedulerHeartbeat.pid == pid)
    connect_args: dict[str, float] = (
        {"timeout": TIMEOUT_SECONDS} if url.get_backend_name() == "sqlite" else {}
    )
    engine = create_engine(url, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            row = connection.execute(query).first()
    except (SQLAlchemyError, OSError) as exc:
        first_line = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0]
        return CheckResult(name="heartbeat", healthy=False, detail=f"not readable: {first_line}")
    finally:
        engine.dispose()
    whose = f"process {pid} on {host}" if pid is not None else f"any node on {host}"
    if row is None:
        return CheckResult(name="heartbeat", healthy=False, detail=f"no heartbeat of {whose}")
    age = ((now or datetime.now(UTC)) - row.beat_at).total_seconds()
    return CheckResult(
        name="heartbeat",
        healthy=age <= max_age,
        detail=f"node {row.node} beat {age:.0f} s ago (limit {max_age:.0f} s)",
    )


def api_base_url(settings: Settings, argv: Sequence[str]) -> str:
    """Where the API of a service process listens, as a local client reaches it."""
    host = option_value(argv, "--host") or settings.host
    port = option_value(argv, "--port") or str(settings.port)
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - we connect, not bind
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def run_health(args: argparse.Namespace, settings: Settings) -> int:
    service = find_service(pid=args.pid, role=args.role)
    role = args.role or (service.role if service else None)
    if args.pid is not None and service is None:
        return _report("health", [_failed("process", f"process {args.pid} is not running")])
    if role is None:
        where = f"process {args.pid} is not" if args.pid is not None else "no process here is"
        return _report("health", [_failed("role", f"{where} a stockcast service; use --role")])
    argv = service.argv if service else ()
    results: list[CheckResult] = []
    if role in ("api", "up"):
        results.append(check_api(api_base_url(settings, argv)))
    if role in ("scheduler", "up"):
        results.append(
            check_process(service.pid)
            if service
            else _failed("process", f"no stockcast {role} process is running")
        )
        results.append(check_database(settings.database_url))
        results.append(
            check_heartbeat(
                settings.database_url,
                host=socket.gethostname(),
                pid=service.pid if service else None,
            )
        )
    return _report(role, results)


def _failed(name: str, detail: str) -> CheckResult:
    return CheckResult(name=name, healthy=False, detail=detail)


def _report(role: str, results: Sequence[CheckResult]) -> int:
    for result in results:
        print(f"{role} {result.line()}")
    return 0 if all(result.healthy for result in results) else 1
