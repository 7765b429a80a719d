"""``stockcast db upgrade`` / ``db current``, the migrations themselves, and start-up errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from db.base import Base
from db.engine import create_sync_db_engine
from stockcast.cli import main
from stockcast.schema import alembic_config, head_revision

OUR_TABLES = {
    "symbols",
    "price_bars",
    "model_versions",
    "model_artifacts",
    "forecasts",
    "job_runs",
    "events",
}
SCHEDULER_TABLES = {"tasks", "schedules", "jobs", "job_results", "metadata"}


def _tables(url: str) -> set[str]:
    engine = create_sync_db_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_creates_every_table(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STOCKCAST_DATABASE_URL", empty_database_url)
    assert main(["db", "current"]) == 0
    assert "not migrated" in capsys.readouterr().out

    assert main(["db", "upgrade"]) == 0
    assert f"revision {head_revision()} (head)" in capsys.readouterr().out
    assert _tables(empty_database_url) >= OUR_TABLES | SCHEDULER_TABLES | {"alembic_version"}

    assert main(["db", "current", "--check"]) == 0
    assert capsys.readouterr().out.strip() == f"{head_revision()} (head)"
    # Running it again is harmless.
    assert main(["db", "upgrade"]) == 0


def test_db_current_check_fails_on_an_unmigrated_database(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKCAST_DATABASE_URL", empty_database_url)
    assert main(["db", "current", "--check"]) == 1


def test_downgrade_and_upgrade_round_trip(database_url: str) -> None:
    config = alembic_config(database_url)
    command.downgrade(config, "base")
    remaining = _tables(database_url)
    assert not (remaining & OUR_TABLES)
    assert remaining >= SCHEDULER_TABLES  # APScheduler's tables are not ours to drop
    command.upgrade(config, "head")
    assert _tables(database_url) >= OUR_TABLES


def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_sync_db_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_object": lambda obj, name, type_, reflected, compare_to: (
                        not (type_ == "table" and reflected and name not in Base.metadata.tables)
                    ),
                },
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def _run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stockcast", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "url",
    ["mysql://root@localhost/stockcast", "definitely not a url", "postgresql://nodatabase"],
)
def test_a_bad_database_url_stops_with_one_line_and_status_2(url: str, tmp_path: Path) -> None:
    result = _run_cli("db", "upgrade", env={"STOCKCAST_DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "STOCKCAST_DATABASE_URL" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "var").exists()  # nothing was created


def test_an_unreachable_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    result = _run_cli(
        "db",
        "upgrade",
        env={"STOCKCAST_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/stockcast"},
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cannot use database" in result.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = _run_cli("--help", env={}, cwd=tmp_path)
    assert result.returncode == 0
    for name in ("db", "api"):
        assert name in result.stdout
