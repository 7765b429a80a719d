"""One scheduler process per SQLite database: a second one is refused, clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.apscheduler_workarounds import (
    SchedulerAlreadyRunningError,
    lock_path_for,
    single_scheduler_lock,
)


def test_a_second_holder_is_refused_until_the_first_lets_go(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    with single_scheduler_lock(url) as path:
        assert path == tmp_path / "service.db.scheduler.lock"
        with pytest.raises(SchedulerAlreadyRunningError) as caught, single_scheduler_lock(url):
            pass
        message = str(caught.value)
        assert "another scheduler process" in message
        assert "SQLite supports one scheduler process" in message
        assert "PostgreSQL" in message
    with single_scheduler_lock(url) as again:
        assert again == path


def test_postgresql_needs_no_lock() -> None:
    url = "postgresql://user@db.example/stockcast"
    assert lock_path_for(url) is None
    with single_scheduler_lock(url) as first, single_scheduler_lock(url) as second:
        assert first is None and second is None
