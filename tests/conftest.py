"""Fixtures shared by the whole suite: real databases on SQLite and PostgreSQL.

Every test that asks for ``database_url`` (or ``engine``/``sessions``) runs twice, once per
backend. The PostgreSQL half needs ``STOCKCAST_TEST_POSTGRES_URL`` (an admin URL such as
``postgresql://postgres@127.0.0.1:5432/postgres``, which ``.ci/run`` sets); without it those
tests are reported as NOT RUN, loudly, in the summary. Each test gets a fresh migrated database:
a copy of a template migrated once per session (a file copy on SQLite, ``CREATE DATABASE ...
TEMPLATE`` on PostgreSQL), so tests that start servers or processes see real, isolated data.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import create_async_db_engine, create_session_factory
from stockcast.schema import upgrade_database

POSTGRES_ENV = "STOCKCAST_TEST_POSTGRES_URL"
NOT_RUN_REASON = f"PostgreSQL half NOT RUN: set {POSTGRES_ENV} to run it"

_counter = itertools.count()


def postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------- backends


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    # Reports carry it to the summary below, from xdist's workers too (they collect, the
    # controller does not).
    request.node.user_properties.append(("db_backend", backend))
    if backend == "postgresql" and postgres_admin_url() is None:
        pytest.skip(NOT_RUN_REASON)
    return backend


class _Postgres:
    """Creates and drops per-test databases on the server named by ``STOCKCAST_TEST_POSTGRES_URL``."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self._admin = create_engine(
            self.admin_url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
        )
        self.prefix = f"sct_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._template: str | None = None

    def url_for(self, name: str) -> str:
        return self.admin_url.set(drivername="postgresql", database=name).render_as_string(
            hide_password=False
        )

    def create(self, *, migrated: bool) -> str:
        name = f"{self.prefix}_{next(_counter)}"
        template = f" TEMPLATE {self.template()}" if migrated else ""
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
        return name

    def template(self) -> str:
        if self._template is None:
            name = f"{self.prefix}_template"
            with self._admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            upgrade_database(self.url_for(name))
            self._template = name
        return self._template

    def drop(self, name: str) -> None:
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        if self._template is not None:
            self.drop(self._template)
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_Postgres | None]:
    admin_url = postgres_admin_url()
    if admin_url is None:
        yield None
        return
    server = _Postgres(admin_url)
    try:
        with server._admin.connect() as conn:  # fail loudly if CI promised a server
            conn.execute(text("SELECT 1"))
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "stockcast.db"
    upgrade_database(f"sqlite:///{path}")
    return path


def _new_database(
    backend: str,
    tmp_path: Path,
    postgres: _Postgres | None,
    template: Path | None,
    *,
    migrated: bool,
) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp_path / f"db-{next(_counter)}.sqlite"
        if migrated and template is not None:
            shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    if postgres is None:
        raise RuntimeError("PostgreSQL requested without a server")
    name = postgres.create(migrated=migrated)
    try:
        yield postgres.url_for(name)
    finally:
        postgres.drop(name)


@pytest.fixture
def database_url(
    db_backend: str,
    tmp_path: Path,
    postgres_server: _Postgres | None,
    request: pytest.FixtureRequest,
) -> Iterator[str]:
    """A fresh database at the migration head (with APScheduler's tables), on each backend."""
    template = request.getfixturevalue("sqlite_template") if db_backend == "sqlite" else None
    yield from _new_database(db_backend, tmp_path, postgres_server, template, migrated=True)


@pytest.fixture
def empty_database_url(
    db_backend: str, tmp_path: Path, postgres_server: _Postgres | None
) -> Iterator[str]:
    """A fresh database with no tables at all, on each backend."""
    yield from _new_database(db_backend, tmp_path, postgres_server, None, migrated=False)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_db_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


# --------------------------------------------------------------------------- reporting


def pytest_report_header(config: pytest.Config) -> str:
    if postgres_admin_url() is None:
        return f"database backends: sqlite only -- {NOT_RUN_REASON}"
    shown = make_url(postgres_admin_url() or "").render_as_string(hide_password=True)
    return f"database backends: sqlite and postgresql ({shown})"


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Say how many database tests ran on each backend, and shout if PostgreSQL did not run."""
    counts: dict[str, dict[str, int]] = {"sqlite": {}, "postgresql": {}}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            backend = dict(getattr(report, "user_properties", ())).get("db_backend")
            if backend is None or (outcome == "passed" and report.when != "call"):
                continue
            counts[backend][outcome] = counts[backend].get(outcome, 0) + 1
    if not any(counts.values()):
        return
    terminalreporter.section("database backends")
    for backend, per in counts.items():
        shown = ", ".join(f"{n} {outcome}" for outcome, n in sorted(per.items())) or "none"
        terminalreporter.write_line(f"{backend:>10}: {shown}")
    if postgres_admin_url() is None:
        skipped = counts["postgresql"].get("skipped", 0)
        terminalreporter.write_line("")
        terminalreporter.write_line(
            f"!!! {NOT_RUN_REASON} ({skipped} PostgreSQL tests were not run) !!!",
            red=True,
            bold=True,
        )
