"""Latency of the watchlist page with a long watchlist: the server-rendered page (first, middle
and searched pages) and its JSON, with every symbol holding a close, a forecast and a job.

    .venv/bin/python bench/dashboard.py [--symbols 1000] [--requests 200]
                                        [--database-url postgresql://...] [--server-root DIR]

Seeds ``--symbols`` symbols through the repositories (a fresh SQLite file unless
``--database-url`` names an empty database), starts ``python -m web`` from ``--server-root``
(default: this checkout; point it at another checkout of the project to measure that version on
the same data) and sends each path ``--requests`` times, one at a time, over one keep-alive
connection, in interleaved rounds. Prints p50/p95/max in milliseconds and the page's size, and
writes ``bench/results/dashboard.json``. A figure, not a test: this machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
API_KEY = "bench-key-0123456789abcdef"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200, help="requests per path")
    parser.add_argument("--database-url", help="an empty database; default: SQLite in a temp dir")
    parser.add_argument("--server-root", type=Path, default=ROOT, help="the checkout to serve")
    return parser.parse_args()


def names(count: int) -> list[str]:
    return [f"T{index:04d}" for index in range(count)]


async def seed(url: str, symbols: list[str]) -> None:
    """Each symbol: 30 daily bars, a five-step forecast and a finished job, so every query of
    the page finds rows."""
    from db.engine import create_async_db_engine, create_session_factory
    from db.models import JobStatus
    from db.repositories import (
        BarRecord,
        ForecastRepository,
        ForecastStepRecord,
        JobRepository,
        PriceRepository,
        SymbolRepository,
    )
    from forecasting.calendar import DEFAULT_EXCHANGE

    engine = create_async_db_engine(url)
    issued = datetime.now(UTC).replace(microsecond=0)
    days = [date.today() - timedelta(days=30 - n) for n in range(30)]
    try:
        async with create_session_factory(engine)() as session, session.begin():
            for index, name in enumerate(symbols):
                await SymbolRepository(session).add(
                    symbol=name, exchange=DEFAULT_EXCHANGE, horizon=5, lookback=60
                )
                base = 50.0 + index
                await PriceRepository(session).upsert(
                    name,
                    [
                        BarRecord(
                            date=day,
                            open=base,
                            high=base + 1,
                            low=base - 1,
                            close=base,
                            adj_close=None,
                            volume=1e6,
                        )
                        for day in days
                    ],
                )
                await ForecastRepository(session).add_batch(
                    symbol=name,
                    model_version_id=None,
                    model_kind="naive",
                    issued_at=issued,
                    last_observed_date=days[-1],
                    last_close=base,
                    steps=[
                        ForecastStepRecord(
                            step=step,
                            target_date=days[-1] + timedelta(days=step),
                            point=base,
                            lower_80=base * (1 - 0.02 * step),
                            upper_80=base * (1 + 0.02 * step),
                            lower_95=base * (1 - 0.03 * step),
                            upper_95=base * (1 + 0.03 * step),
                            naive=base,
                        )
                        for step in range(1, 6)
                    ],
                )
                jobs = JobRepository(session)
                await jobs.record_queued(job_id=f"f-{name}", kind="forecast", symbol=name)
                await jobs.finish(f"f-{name}", status=JobStatus.SUCCEEDED)
    finally:
        await engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, data_dir: Path, root: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "STOCKCAST_DATABASE_URL": url,
        "STOCKCAST_DATA_DIR": str(data_dir),
        "STOCKCAST_PORT": str(port),
        "STOCKCAST_API_KEYS": API_KEY,
        "STOCKCAST_SOURCE": "sample",
        "STOCKCAST_LOG_LEVEL": "WARNING",
        "STOCKCAST_RATE_LIMIT_PER_MINUTE": "100000",
    }
    process = subprocess.Popen([sys.executable, "-m", "web"], cwd=root, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("the server did not become ready")


def measure(base: str, paths: list[str], count: int) -> dict[str, dict[str, float]]:
    """Each path ``count`` times, in rounds (a noisy neighbour hurts them alike)."""
    timings: dict[str, list[float]] = {path: [] for path in paths}
    sizes: dict[str, int] = {}
    failures: dict[str, int] = dict.fromkeys(paths, 0)
    rows: dict[str, int] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for path in paths:  # warm up
            for _ in range(5):
                client.get(path)
        for _ in range(count):
            for path in paths:
                start = time.perf_counter()
                response = client.get(path)
                timings[path].append((time.perf_counter() - start) * 1000)
                # Counted, not raised: another version of the service may fail where this works.
                failures[path] += response.status_code != 200
                sizes[path] = len(response.content)
                rows[path] = response.text.count("<tr data-symbol=") + response.text.count(
                    '{"symbol":'
                )
    return {
        path: {
            "p50_ms": statistics.median(values),
            "p95_ms": statistics.quantiles(values, n=20)[18],
            "max_ms": max(values),
            "bytes": sizes[path],
            "rows": rows[path],
            "failed": failures[path],
        }
        for path, values in timings.items()
    }


def main() -> None:
    args = parse_args()
    from stockcast.schema import upgrade_database

    symbols = names(args.symbols)
    middle = symbols[len(symbols) // 2]
    paths = [
        "/",
        f"/?after={middle}",
        "/?q=T05",
        "/ui/data/watchlist",
        f"/ui/data/watchlist?after={middle}",
    ]
    with tempfile.TemporaryDirectory(prefix="stockcast-dash-bench-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        print(f"database: {url.split('@')[-1]}; {args.symbols} symbols; seeding ...", flush=True)
        upgrade_database(url)
        asyncio.run(seed(url, symbols))
        port = free_port()
        process = start_server(url, Path(tmp), args.server_root.resolve(), port)
        try:
            results = measure(f"http://127.0.0.1:{port}", paths, args.requests)
        finally:
            process.terminate()
            process.wait(timeout=20)
    print(f"server: {args.server_root.resolve()}; {args.requests} sequential requests per path")
    for path, figures in results.items():
        print(
            f"{path:<40} p50 {figures['p50_ms']:7.2f} ms  p95 {figures['p95_ms']:7.2f} ms  "
            f"max {figures['max_ms']:7.2f} ms  {figures['bytes']:>8} bytes  "
            f"{figures['rows']:>4} rows  {figures['failed']:.0f} failed"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dashboard.json").write_text(
        json.dumps(
            {
                "symbols": args.symbols,
                "database": url.split(":")[0],
                "server_root": str(args.server_root.resolve()),
                "requests": args.requests,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
