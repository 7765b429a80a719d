"""The API on a SQLite file whose filesystem fills up (a real 8 MiB tmpfs, filled to the last
byte): writes get 503 problem details with ``Retry-After`` and change nothing, reads are served,
and once space is back everything works. Needs root to mount the tmpfs."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from stockcast.schema import head_revision
from web.app import create_app
from web.config import WebConfig

API_KEY = "test-key-0123456789abcdef"
KEY = {"X-API-Key": API_KEY}

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None,
    reason="mounting a small tmpfs needs root (the container's tests run as root)",
)


@contextlib.contextmanager
def _small_filesystem(where: Path, size: str = "8m") -> Iterator[Path]:
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(directory: Path) -> Path:
    """Write a file until the filesystem has no byte left."""
    filler = directory / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (65536, 1):
            while True:
                try:
                    os.write(descriptor, b"\0" * chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(descriptor)
    return filler


def test_a_full_disk_gets_503_for_writes_and_keeps_reads(
    tmp_path: Path, sqlite_template: Path, shared_prices_dir: Path
) -> None:
    with _small_filesystem(tmp_path / "small") as small:
        database = small / "stockcast.db"
        database.write_bytes(sqlite_template.read_bytes())
        config = WebConfig(
            database_url=f"sqlite:///{database}",
            expected_revision=head_revision(),
            api_keys=(API_KEY,),
            source=f"csv:{shared_prices_dir}",
            event_poll_interval_s=0.05,
        )
        with TestClient(create_app(config)) as client:
            assert client.post("/symbols", json={"symbol": "KO"}, headers=KEY).status_code == 201
            filler = _fill(small)
            refused: list[Any] = [
                client.post("/symbols", json={"symbol": "JPM"}, headers=KEY),
                client.patch("/symbols/KO", json={"horizon": 9}, headers=KEY),
            ]
            for response in refused:
                assert response.status_code == 503, response.text
                assert response.headers["content-type"].startswith("application/problem+json")
                assert int(response.headers["retry-after"]) > 0
                assert response.json()["type"] == "urn:stockcast:problem:database-unavailable"
            assert client.get("/health").status_code == 200
            assert client.get("/symbols/KO").json()["horizon"] != 9

            filler.unlink()
            assert client.post("/symbols", json={"symbol": "JPM"}, headers=KEY).status_code == 201
            assert client.patch("/symbols/KO", json={"horizon": 9}, headers=KEY).status_code == 200
            watched = {item["symbol"] for item in client.get("/symbols").json()}
            assert watched == {"KO", "JPM"}
