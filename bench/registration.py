"""Time from registering N symbols through the API to every one of them having a forecast.

    .venv/bin/python bench/registration.py [--symbols 1000] [--rows 2520] [--chunk 250]
        [--concurrency 4] [--batch-size 50] [--within 600] [--server granian]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--prices DIR]

Setup (not timed): ``--symbols`` CSV files A000.. (each the last ``--rows`` bars, ten years by
default, of one of the eight shared price files, round robin), a fresh migrated PostgreSQL
database, the API (``python -m web``, its default server) and one scheduler process (``python -m
scheduler``, scheduler and worker, ``--concurrency`` job slots), both on that database and the CSV
source, as a deployment runs them.

Timed: from the first ``POST /symbols`` until every symbol has a stored forecast. The symbols go
in ``--chunk`` symbols per request (the bulk form; ``--chunk 1`` sends one symbol per request, in
the single form). Nothing is trained beforehand: the first forecasts come from the naive
baseline, while the first trainings the registration queued run behind them on the node's
training slot. Prints when registration ended, when 50%, 90% and all symbols had a forecast, and
the jobs by kind and status at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from api import API_KEY, free_port, start_server
from refresh import Admin, add_source_arguments, write_csvs

NODE_COMMAND = (sys.executable, "-m", "scheduler", "--identity", "bench-node")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=2520, help="bars per CSV file (10 years)")
    parser.add_argument("--chunk", type=int, default=250, help="symbols per POST /symbols")
    parser.add_argument("--concurrency", type=int, default=4, help="job slots of the node")
    parser.add_argument("--batch-size", type=int, default=50, help="symbols per refresh batch")
    parser.add_argument("--within", type=float, default=600, help="give up after this many s")
    parser.add_argument("--server", default="granian", help="the API's ASGI server")
    add_source_arguments(parser)
    return parser.parse_args()


def start_node(
    url: str, csv_dir: Path, workdir: Path, concurrency: int, batch_size: int
) -> tuple[subprocess.Popen[bytes], Path]:
    """One ``python -m scheduler`` process (scheduler and worker), logging to a file."""
    env = {
        **os.environ,
        "STOCKCAST_REFRESH_BATCH_SIZE": str(batch_size),
        "STOCKCAST_DATABASE_URL": url,
        "STOCKCAST_SOURCE": f"csv:{csv_dir}",
        "STOCKCAST_DATA_DIR": str(workdir / "node"),
        "STOCKCAST_LOG_LEVEL": "INFO",
    }
    (workdir / "node").mkdir()
    log = workdir / "node.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*NODE_COMMAND, "--concurrency", str(concurrency)],
            env=env,
            cwd=workdir / "node",
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 90
    while "scheduler node bench-node started" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the node did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    return process, log


async def register_and_wait(
    base: str, url: str, symbols: list[str], chunk: int, within: float
) -> dict[str, float | None]:
    """Register ``symbols`` through the API; seconds from the first request to milestones."""
    from sqlalchemy import func, select

    from db.engine import create_async_db_engine, create_session_factory
    from db.models import ForecastRow

    engine = create_async_db_engine(url)
    sessions = create_session_factory(engine)
    forecast = select(func.count(func.distinct(ForecastRow.symbol)))
    marks: dict[str, float | None] = {"registered": None, "50%": None, "90%": None, "all": None}
    headers = {"X-API-Key": API_KEY}
    try:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
            started = time.perf_counter()
            for first in range(0, len(symbols), chunk):
                part = symbols[first : first + chunk]
                body = {"symbol": part[0]} if chunk == 1 else [{"symbol": s} for s in part]
                response = await client.post("/symbols", json=body)
                if response.status_code != 201:
                    raise RuntimeError(f"POST /symbols: {response.status_code} {response.text}")
            marks["registered"] = time.perf_counter() - started
            print(f"  registered {len(symbols)} in {marks['registered']:.1f} s", flush=True)
            reported = 0.0
            while True:
                elapsed = time.perf_counter() - started
                async with sessions() as session:
                    done = (await session.execute(forecast)).scalar_one()
                for mark, share in (("50%", 0.5), ("90%", 0.9), ("all", 1.0)):
                    if marks[mark] is None and done >= share * len(symbols):
                        marks[mark] = elapsed
                if done >= len(symbols) or elapsed > within:
                    break
                if elapsed - reported >= 10:
                    reported = elapsed
                    print(f"  {elapsed:5.0f} s: {done} symbols with a forecast", flush=True)
                await asyncio.sleep(0.25)
    finally:
        await engine.dispose()
    return marks


async def job_counts(url: str) -> dict[tuple[str, str], int]:
    from sqlalchemy import func, select

    from db.engine import create_async_db_engine, create_session_factory
    from db.models import JobRun

    engine = create_async_db_engine(url)
    try:
        async with create_session_factory(engine)() as session:
            query = select(JobRun.kind, JobRun.status, func.count()).group_by(
                JobRun.kind, JobRun.status
            )
            return {
                (kind, getattr(status, "value", status)): n
                for kind, status, n in (await session.execute(query)).all()
            }
    finally:
        await engine.dispose()


def main() -> None:
    args = parse_args()
    from stockcast.schema import upgrade_database

    admin = Admin(args.admin_url)
    name = "stockcast_bench_registration"
    with tempfile.TemporaryDirectory(prefix="stockcast-bench-") as tmp:
        workdir = Path(tmp)
        csv_dir = workdir / "prices"
        symbols = write_csvs(args.prices, csv_dir, args.symbols, args.rows)
        url = admin.create(name)
        upgrade_database(url)
        port = free_port()
        api = start_server(url, workdir / "api", csv_dir, port, args.server)
        node, log = start_node(url, csv_dir, workdir, args.concurrency, args.batch_size)
        print(
            f"{len(symbols)} symbols ({args.rows} bars each, CSV), PostgreSQL, one scheduler "
            f"process with {args.concurrency} job slots, {os.cpu_count()} CPU cores; "
            f"{args.chunk} symbols per request",
            flush=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            marks = asyncio.run(register_and_wait(base, url, symbols, args.chunk, args.within))
            counts = asyncio.run(job_counts(url))
        finally:
            for line in log.read_text(errors="replace").splitlines():
                if "refresh batch of" in line:  # where each batch spent its time
                    print(f"    {line.split('refresh batch of', 1)[1].strip()}", flush=True)
            node.terminate()
            api.terminate()
            node.wait(timeout=60)
            api.wait(timeout=60)
            admin.drop(name)
    print()
    print(f"registration of {len(symbols)} symbols, seconds from the first request:")
    for mark, seconds in marks.items():
        shown = f"{seconds:7.1f} s" if seconds is not None else "    not reached"
        print(f"  {mark:>10}: {shown}")
    print("jobs at the end (kind, status: count):")
    for (kind, status), count in sorted(counts.items()):
        print(f"  {kind:>15} {status:>10}: {count}")
    if marks["all"] is None:
        raise SystemExit(f"not every symbol had a forecast within {args.within:g} s; see {log}")


if __name__ == "__main__":
    main()
