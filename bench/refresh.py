"""Time to refresh N symbols after a close: ingest the new session from CSV and store a forecast
from each symbol's trained champion, with 1 and with 2 scheduler worker processes on PostgreSQL.

    .venv/bin/python bench/refresh.py [--symbols 100] [--rounds 3] [--concurrency 4]
        [--batch-size 50] [--processes 1,2]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--prices DIR]

Setup (not timed): 100 CSV files A000..A099, each the last ``--rows`` bars of one of the eight
shared price files (round robin); a template database holding every symbol on the watchlist, its
history without the newest bar, and a champion. One LSTM (the service's default shape: lookback
60, horizon 5, hidden 64, 2 layers) is trained once, on A000, and its artifact serves as every
symbol's champion: a forecast costs the same whichever weights the network holds.

Timed, per round: a fresh copy of the template; N ``python -m scheduler --role worker`` processes
(started before the clock starts); the clock runs from enqueueing the ``refresh`` job of the
exchange (what the ``refresh:XNYS`` schedule queues after the close) until every symbol has a
stored forecast for the new session. The refresh splits the symbols into ``refresh_batch`` jobs of
``--batch-size``; each fetches its symbols' new bars in one call, upserts them, forecasts every
symbol and evaluates matured forecasts in bulk. Prints the median over rounds; the rounds
interleave the process counts (1, 2, 1, 2, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_PRICES = Path(__file__).resolve().parents[2] / "shared" / "data" / "prices"
if TYPE_CHECKING:
    from forecasting.artifacts import ModelArtifact

Worker = tuple["subprocess.Popen[bytes]", Path, str]
SOURCES = ("AAPL", "DIS", "JPM", "KO", "MSFT", "NVDA", "SPY", "XOM")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--rows", type=int, default=1000, help="bars per CSV file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="job slots per worker")
    parser.add_argument("--batch-size", type=int, default=50, help="symbols per refresh batch")
    parser.add_argument(
        "--batch-concurrency",
        help=(
            "comma-separated values of STOCKCAST_REFRESH_BATCH_CONCURRENCY (batches a worker "
            "runs at once) to compare in the same interleaved rounds; default: the service's"
        ),
    )
    parser.add_argument(
        "--processes", default="1,2", help="worker process counts to time, comma separated"
    )
    add_source_arguments(parser)
    return parser.parse_args()


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """``--prices`` (the shared price files to copy from) and ``--admin-url`` (a PostgreSQL
    server where the benchmark may create and drop its databases)."""
    parser.add_argument("--prices", type=Path, default=DEFAULT_PRICES)
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "STOCKCAST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )


def write_csvs(prices: Path, target: Path, count: int, rows: int) -> list[str]:
    target.mkdir(parents=True, exist_ok=True)
    symbols = [f"A{n:03d}" for n in range(count)]
    for n, symbol in enumerate(symbols):
        lines = (prices / f"{SOURCES[n % len(SOURCES)]}.csv").read_text().splitlines()
        (target / f"{symbol}.csv").write_text("\n".join([lines[0], *lines[1:][-rows:]]) + "\n")
    return symbols


def train_champion(csv_dir: Path, symbol: str) -> ModelArtifact:
    from forecasting.config import ModelConfig, TrainConfig
    from forecasting.model import LSTMForecaster
    from forecasting.sources import CsvSource

    bars = CsvSource(csv_dir).fetch(symbol)
    model = LSTMForecaster(
        ModelConfig(), TrainConfig(epochs=2, accelerator="cpu", max_history=len(bars))
    )
    return model.fit(bars.iloc[:-1]).to_artifact(symbol=symbol)


class Admin:
    def __init__(self, admin_url: str) -> None:
        self.url = make_url(admin_url)
        self.engine = create_engine(
            self.url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
        )

    def url_for(self, name: str) -> str:
        return self.url.set(drivername="postgresql", database=name).render_as_string(
            hide_password=False
        )

    def create(self, name: str, template: str | None = None) -> str:
        self.drop(name)
        suffix = f' TEMPLATE "{template}"' if template else ""
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
        return self.url_for(name)

    def drop(self, name: str) -> None:
        with self.engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def seed(url: str, csv_dir: Path, symbols: list[str], artifact: ModelArtifact) -> None:
    from db.engine import create_async_db_engine, create_session_factory
    from db.repositories import (
        ModelVersionRepository,
        NewModelVersion,
        PriceRepository,
        SymbolRepository,
    )
    from forecasting.calendar import DEFAULT_EXCHANGE
    from forecasting.sources import CsvSource
    from scheduler.conversions import frame_to_records

    engine = create_async_db_engine(url)
    sessions = create_session_factory(engine)
    source = CsvSource(csv_dir)
    try:
        for symbol in symbols:
            records = frame_to_records(source.fetch(symbol))[:-1]  # the newest bar is "tonight's"
            async with sessions.begin() as session:
                await SymbolRepository(session).add(
                    symbol=symbol, exchange=DEFAULT_EXCHANGE, horizon=5, lookback=60
                )
                await PriceRepository(session).upsert(symbol, records)
                versions = ModelVersionRepository(session)
                row = await versions.add(
                    NewModelVersion(
                        symbol=symbol, weights=artifact.weights, metadata=artifact.metadata
                    )
                )
                await versions.promote(row.id)
    finally:
        await engine.dispose()


def start_workers(
    count: int,
    url: str,
    csv_dir: Path,
    workdir: Path,
    concurrency: int,
    batch_size: int,
    batches_at_once: int | None = None,
) -> list[Worker]:
    env = {
        **os.environ,
        "STOCKCAST_REFRESH_BATCH_SIZE": str(batch_size),
        "STOCKCAST_DATABASE_URL": url,
        "STOCKCAST_SOURCE": f"csv:{csv_dir}",
        "STOCKCAST_DATA_DIR": str(workdir),
        "STOCKCAST_LOG_LEVEL": "INFO",
    }
    if batches_at_once is not None:
        env["STOCKCAST_REFRESH_BATCH_CONCURRENCY"] = str(batches_at_once)
    workers: list[Worker] = []
    for n in range(count):
        log = workdir / f"worker-{n}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scheduler",
                    "--role",
                    "worker",
                    "--identity",
                    f"bench-{n}",
                    "--concurrency",
                    str(concurrency),
                ],
                env=env,
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        workers.append((process, log, f"bench-{n}"))
    deadline = time.monotonic() + 60
    for process, log, name in workers:
        while f"scheduler node {name} started" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
    return workers


def stop_workers(workers: list[Worker]) -> None:
    for process, _, _ in workers:
        process.send_signal(signal.SIGTERM)
    for process, log, name in workers:
        if process.wait(timeout=60) != 0:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log.read_text()}")
        for line in log.read_text(errors="replace").splitlines():
            if "refresh batch of" in line:  # where each batch spent its time
                print(f"    {name}: {line.split('refresh batch of', 1)[1].strip()}", flush=True)


async def refresh(url: str, symbols: list[str], newest: date) -> tuple[float, int]:
    """Enqueue the exchange's refresh, as its schedule does after the close; seconds until every
    symbol has a forecast from its new bar."""
    from datetime import timedelta

    from apscheduler import AsyncScheduler
    from sqlalchemy import func, select

    from db.contracts import JobRequest
    from db.engine import create_async_db_engine, create_session_factory
    from db.enqueue import enqueue_jobs
    from db.jobstore import create_data_store, create_event_broker
    from db.models import ForecastRow
    from db.repositories import JobRepository
    from forecasting.calendar import DEFAULT_EXCHANGE

    engine = create_async_db_engine(url)
    sessions = create_session_factory(engine)
    fresh = select(func.count(func.distinct(ForecastRow.symbol))).where(
        ForecastRow.last_observed_date >= newest
    )
    try:
        async with AsyncScheduler(create_data_store(engine), create_event_broker(url)) as client:
            started = time.perf_counter()
            await enqueue_jobs(
                client,
                sessions,
                [JobRequest.refresh(DEFAULT_EXCHANGE)],
                result_expiration=timedelta(minutes=10),
            )
            while True:
                async with sessions() as session:
                    done = (await session.execute(fresh)).scalar_one()
                if done >= len(symbols):
                    elapsed = time.perf_counter() - started
                    break
                # A COUNT over the growing forecasts table: every 50 ms it took a quarter of a
                # core from the workers it measures; 0.25 s bounds the error at 1% of a 25 s run.
                await asyncio.sleep(0.25)
            async with sessions() as session:
                counts = await JobRepository(session).count_by_status()
        return elapsed, counts.get("failed", 0)
    finally:
        await engine.dispose()


def main() -> None:
    args = parse_args()
    from forecasting.sources import CsvSource
    from stockcast.schema import upgrade_database

    admin = Admin(args.admin_url)
    with tempfile.TemporaryDirectory(prefix="stockcast-bench-") as tmp:
        workdir = Path(tmp)
        csv_dir = workdir / "prices"
        symbols = write_csvs(args.prices, csv_dir, args.symbols, args.rows)
        print(f"training one champion on {symbols[0]} ...", flush=True)
        artifact = train_champion(csv_dir, symbols[0])
        newest = min(CsvSource(csv_dir).newest_date(s) for s in symbols[: len(SOURCES)])
        template = "stockcast_bench_refresh_template"
        template_url = admin.create(template)
        upgrade_database(template_url)
        asyncio.run(seed(template_url, csv_dir, symbols, artifact))
        config = artifact.metadata["model_config"]
        print(
            f"{len(symbols)} symbols A000..A{len(symbols) - 1:03d} from 8 CSV files "
            f"({args.rows} bars each, the newest one ingested by the timed refresh); one model "
            f"trained once and reused as every symbol's champion (lookback {config['lookback']}, "
            f"horizon {config['horizon']}, hidden {config['hidden_size']}, "
            f"{config['num_layers']} layers); {os.cpu_count()} CPU cores; PostgreSQL; "
            f"{args.concurrency} job slots per worker process",
            flush=True,
        )
        counts = [int(n) for n in args.processes.split(",")]
        at_once: list[int | None] = (
            [int(n) for n in args.batch_concurrency.split(",")]
            if args.batch_concurrency
            else [None]
        )
        setups = [(processes, batches) for batches in at_once for processes in counts]
        timings: dict[tuple[int, int | None], list[float]] = {setup: [] for setup in setups}
        try:
            # Rounds interleave the set-ups (1, 2, 1, 2, ... processes), so a noisy neighbour on
            # this shared machine hurts them alike and the ratios are measured in one run.
            for round_ in range(args.rounds):
                for processes, batches in setups:
                    name = f"stockcast_bench_refresh_{processes}_{round_}"
                    url = admin.create(name, template)
                    workers = start_workers(
                        processes,
                        url,
                        csv_dir,
                        workdir,
                        args.concurrency,
                        args.batch_size,
                        batches,
                    )
                    try:
                        seconds, failed = asyncio.run(refresh(url, symbols, newest))
                    finally:
                        stop_workers(workers)
                        admin.drop(name)
                    if failed:
                        raise RuntimeError(f"{failed} jobs failed; see {workdir}/worker-*.log")
                    timings[processes, batches].append(seconds)
                    print(
                        f"  {processes} worker(s){_batches_label(batches)}, round {round_ + 1}: "
                        f"{seconds:.2f} s",
                        flush=True,
                    )
        finally:
            admin.drop(template)
    medians = {setup: statistics.median(seconds) for setup, seconds in timings.items()}
    print()
    print(
        f"refresh of {len(symbols)} symbols (batches of {args.batch_size}: fetch, store, "
        f"forecast, evaluate), median of {args.rounds}:"
    )
    for (processes, batches), seconds in medians.items():
        print(
            f"  {processes} worker process(es){_batches_label(batches)}: {seconds:7.2f} s  "
            f"({len(symbols) / seconds:6.1f} symbols/s)"
        )
    for batches in at_once:
        if (1, batches) in medians and (2, batches) in medians:
            ratio = medians[1, batches] / medians[2, batches]
            print(f"  speed-up (1 / 2){_batches_label(batches)}: {ratio:6.2f}x")


def _batches_label(batches: int | None) -> str:
    return "" if batches is None else f", {batches} batch(es) at once"


if __name__ == "__main__":
    main()
