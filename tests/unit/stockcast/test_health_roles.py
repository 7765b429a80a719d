"""``stockcast health``: which role a command line runs, and where its API listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockcast.commands.health import api_base_url, check_database, option_value, service_role
from stockcast.settings import Settings


@pytest.mark.parametrize(
    ("argv", "role"),
    [
        (["/opt/venv/bin/python", "/opt/venv/bin/stockcast", "api"], "api"),
        (["/opt/venv/bin/python", "/opt/venv/bin/stockcast", "scheduler", "--role", "worker"], "scheduler"),
        (["/sbin/docker-init", "--", "stockcast", "scheduler"], "scheduler"),
        (["python3", "-m", "stockcast", "up", "--port", "8001"], "up"),
        (["python", "-m", "web", "--port", "9000"], "api"),
        (["python", "-u", "-m", "scheduler", "--identity", "n1"], "scheduler"),
        (["/opt/venv/bin/python", "/opt/venv/bin/stockcast", "db", "upgrade"], None),
        (["/opt/venv/bin/python", "/opt/venv/bin/stockcast", "health"], None),
        (["/opt/venv/bin/python", "/opt/venv/bin/stockcast"], None),
        (["python", "-m", "pytest", "tests/unit"], None),
        (["python", "-c", "from multiprocessing.spawn import spawn_main; spawn_main()"], None),
        (["postgres", "-D", "/var/lib/postgresql"], None),
        ([], None),
    ],
)  # fmt: skip
def test_the_role_comes_from_the_command_line(argv: list[str], role: str | None) -> None:
    assert service_role(argv) == role


def test_options_are_read_in_both_spellings_and_the_last_one_wins() -> None:
    argv = ["stockcast", "up", "--port", "8001", "--host=0.0.0.0", "--port=8002"]
    assert option_value(argv, "--port") == "8002"
    assert option_value(argv, "--host") == "0.0.0.0"
    assert option_value(argv, "--source") is None
    assert option_value(["stockcast", "api", "--port"], "--port") is None


def test_the_api_address_prefers_the_command_line_over_the_settings(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"STOCKCAST_DATA_DIR": str(tmp_path), "STOCKCAST_HOST": "0.0.0.0", "STOCKCAST_PORT": "8000"}
    )
    assert api_base_url(settings, ["stockcast", "api"]) == "http://127.0.0.1:8000"
    assert api_base_url(settings, ["stockcast", "api", "--port", "9001"]) == "http://127.0.0.1:9001"
    assert api_base_url(settings, ["stockcast", "up", "--host", "::1"]) == "http://[::1]:8000"
    assert api_base_url(settings, ["stockcast", "api", "--host=10.1.2.3"]) == "http://10.1.2.3:8000"


def test_a_missing_sqlite_file_is_unhealthy_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "stockcast.db"
    result = check_database(f"sqlite:///{missing}")
    assert not result.healthy
    assert "no such file" in result.detail
    assert not missing.exists()
    assert not missing.parent.exists()
