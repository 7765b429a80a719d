"""One scheduler process per SQLite database, enforced by an exclusive lock file next to it.

Two APScheduler nodes on one SQLite file run some jobs twice (SQLite has no ``SKIP LOCKED``;
apscheduler issue 959), so a second one must refuse to start rather than quietly duplicate work.
``flock`` locks die with their process, so a killed scheduler never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

LOCK_SUFFIX = ".scheduler.lock"


class SchedulerAlreadyRunningError(RuntimeError):
    """Another scheduler process holds the SQLite database's scheduler lock."""

    def __init__(self, database: Path, lock_path: Path, holder: str) -> None:
        who = f" (pid {holder})" if holder else ""
        super().__init__(
            f"another scheduler process{who} already runs on the SQLite database {database} "
            f"(lock {lock_path}); SQLite supports one scheduler process: stop the other one, "
            "or use PostgreSQL to run several"
        )
        self.database = database
        self.lock_path = lock_path


def lock_path_for(database_url: str) -> Path | None:
    """The lock file of a SQLite database URL; ``None`` for databases that need no lock."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    database = Path(url.database).expanduser().resolve()
    return database.with_name(database.name + LOCK_SUFFIX)


@contextmanager
def single_scheduler_lock(database_url: str) -> Iterator[Path | None]:
    """Hold the database's scheduler lock for the duration of the block (no-op on PostgreSQL)."""
    path = lock_path_for(database_url)
    if path is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()
            database = path.with_name(path.name.removesuffix(LOCK_SUFFIX))
            raise SchedulerAlreadyRunningError(database, path, holder) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield path
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
