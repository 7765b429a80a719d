"""Time to refresh N symbols after a close: ingest the new session from CSV, store a forecast
from each symbol's served plan and evaluate the forecasts that matured, with 1 and with 2
scheduler worker processes on PostgreSQL.

    .venv/bin/python bench/refresh.py [--symbols 100] [--rounds 3] [--concurrency 4]
        [--batch-size 50] [--processes 1,2] [--batch-concurrency 1,4]
        [--policy always] [--warm-up-days 5] [--bare]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--prices DIR]

Setup (not timed), the steady state of a service that has run for days: N CSV files A000..,
each the last ``--rows`` bars of one of the eight shared price files (round robin), at first
without their newest ``--warm-up-days`` bars; a template database holding every symbol on the
watchlist with that history less its newest bar. A000 gets its first training as the retrain job
runs it (the worker's defaults for an ``initial`` training: 5 epochs, 1 backtest fold; the
service's LSTM shape: lookback 60, horizon 5, hidden 64, 2 layers), in a child process, judged by
the gate under ``--policy`` (default ``always``, so that the plan serves the LSTM, the costlier
forecast: under ``evidence`` a 5-epoch LSTM rarely beats naive and drift) and recorded with its
served plan by ``record_training_outcome``. Every other symbol gets the same weights as a
champion version of its own and the same plan pointing at it (``ServedPlanRepository.add``): a
forecast costs the same whichever weights the network holds. Then, once per warm-up day, the
next bar is appended to every CSV file and an untimed refresh runs with the worker processes, so
the forecasts of the last ``--warm-up-days`` sessions, their filled actuals and the plans'
adaptive-conformal states are written by the service itself. Finally the CSV files get their
newest bar, which the timed refresh ingests. ``--bare`` keeps the earlier set-up: one model
trained once (2 epochs) and reused as every symbol's champion, no plan (the bare-LSTM forecast)
and no earlier forecasts (nothing to evaluate), with the full CSV files.

Timed, per round: a fresh copy of the template; N ``python -m scheduler --role worker`` processes
(started before the clock starts); the clock runs from enqueueing the ``refresh`` job of the
exchange (what the ``refresh:XNYS`` schedule queues after the close) until every symbol has a
stored forecast for the new session. The refresh splits the symbols into ``refresh_batch`` jobs of
``--batch-size``; each fetches its symbols' new bars in one call, upserts them, forecasts every
symbol and evaluates matured forecasts in bulk (in steady state, one step of each of the last
five forecasts per symbol, fed to its plan's calibration). Each round also reports when every
batch had finished (the last batches' evaluate stage runs after their forecasts are stored), the
forecasts made, the steps evaluated (the batches' results) and the plans updated, and the stage
times of every batch. Prints the median over rounds; the rounds interleave the process counts
(1, 2, 1, 2, ...) and the ``--batch-concurrency`` values.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_PRICES = Path(__file__).resolve().parents[2] / "shared" / "data" / "prices"
if TYPE_CHECKING:
    from db.contracts import RecordedModel
    from db.models import ServedPlan
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
    parser.add_argument(
        "--bare",
        action="store_true",
        help=(
            "the earlier set-up: one model reused as every symbol's champion, no served plan and "
            "no earlier forecasts (the bare-LSTM forecast, an evaluate stage with nothing to do)"
        ),
    )
    parser.add_argument(
        "--policy",
        default="always",
        help="promotion policy of A000's training (default 'always': the plan serves the LSTM)",
    )
    parser.add_argument(
        "--warm-up-days",
        type=int,
        default=5,
        help="untimed daily refreshes before the timed one (default: the horizon, 5)",
    )
    add_source_arguments(parser)
    args = parser.parse_args()
    if args.warm_up_days < 0:
        parser.error("--warm-up-days must be 0 or more")
    return args


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


def write_csvs(prices: Path, target: Path, count: int, rows: int, *, drop: int = 0) -> list[str]:
    """A000..A{count-1}: each the last ``rows`` bars of one shared price file (round robin),
    less its newest ``drop`` bars (the sessions that have not closed yet)."""
    target.mkdir(parents=True, exist_ok=True)
    symbols = [f"A{n:03d}" for n in range(count)]
    for n, symbol in enumerate(symbols):
        lines = (prices / f"{SOURCES[n % len(SOURCES)]}.csv").read_text().splitlines()
        bars = lines[1:][-rows:]
        bars = bars[: len(bars) - drop]
        (target / f"{symbol}.csv").write_text("\n".join([lines[0], *bars]) + "\n")
    return symbols


def newest_bar(csv_dir: Path, symbols: list[str]) -> date:
    """The oldest of the CSV files' newest bars (the price files end on different days): every
    symbol is refreshed once it has a forecast from a bar on or after it."""
    from forecasting.sources import CsvSource

    source = CsvSource(csv_dir)
    return min(source.newest_date(s) for s in symbols[: len(SOURCES)])


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


async def seed(
    url: str, csv_dir: Path, symbols: list[str], artifact: ModelArtifact | None = None
) -> None:
    """Every symbol on the watchlist with its CSV history less the newest bar (tonight's); with
    ``artifact``, that model as every symbol's champion (``--bare``: no served plan)."""
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
                if artifact is None:
                    continue
                versions = ModelVersionRepository(session)
                row = await versions.add(
                    NewModelVersion(
                        symbol=symbol, weights=artifact.weights, metadata=artifact.metadata
                    )
                )
                await versions.promote(row.id)
    finally:
        await engine.dispose()


async def train_served(url: str, symbol: str, policy: str) -> RecordedModel:
    """The first training of a newly watched ``symbol`` as the retrain job runs it: its stored
    bars, the worker's default settings for an ``initial`` training (``RetrainParams``), the
    training and the gate in a child process (``train_in_child``), then the version, the gate's
    verdict and the served plan recorded in one transaction (``record_training_outcome``)."""
    import anyio.to_process

    from db.contracts import RetrainParams, to_json
    from db.engine import create_async_db_engine, create_session_factory
    from db.repositories import PriceRepository
    from forecasting.promotion import parse_policy
    from scheduler.config import TrainingDefaults
    from scheduler.conversions import records_to_bars
    from scheduler.model_records import record_training_outcome
    from scheduler.retrain import training_configs
    from scheduler.training_process import TrainingRequest, train_in_child

    params = RetrainParams(initial=True, policy=policy)
    defaults = TrainingDefaults()
    model, train, backtest = training_configs(params, horizon=5, lookback=60, defaults=defaults)
    engine = create_async_db_engine(url)
    sessions = create_session_factory(engine)
    try:
        async with sessions() as session:
            records = await PriceRepository(session).load(symbol)
        request = TrainingRequest(
            symbol=symbol,
            bars=records_to_bars(records),
            model_config=model,
            train_config=train,
            backtest_config=backtest,
            policy=parse_policy(policy),
            champion=None,
            tracking_uri=None,
            model_name=None,
            artifact_root=None,
            log_level=logging.WARNING,
        )
        outcome = await anyio.to_process.run_sync(train_in_child, request, cancellable=True)
        return await record_training_outcome(
            sessions,
            symbol=symbol,
            outcome=outcome,
            params={
                **to_json(params),
                "model": model.to_dict(),
                "train": train.to_dict(),
                "backtest": backtest.to_dict(),
                "policy": request.policy.value,
            },
        )
    finally:
        await engine.dispose()


async def copy_served(url: str, trained: str, symbols: list[str]) -> ServedPlan:
    """Every other symbol gets ``trained``'s champion weights as a champion version of its own
    and the same served plan (recipe, candidate, evidence) pointing at that version, through the
    repositories the retrain records with. Returns the trained symbol's plan."""
    from db.engine import create_async_db_engine, create_session_factory
    from db.repositories import (
        ModelVersionRepository,
        NewModelVersion,
        NewServedPlan,
        ServedPlanRepository,
    )
    from scheduler.model_records import load_champion

    engine = create_async_db_engine(url)
    sessions = create_session_factory(engine)
    try:
        async with sessions() as session:
            champion = await load_champion(session, trained)
            plan = await ServedPlanRepository(session).current(trained)
            if champion is None or plan is None:
                raise RuntimeError(f"the training of {trained} left no champion or no plan")
            version = await ModelVersionRepository(session).get(champion.version_id)
        for symbol in symbols:
            if symbol == trained:
                continue
            async with sessions.begin() as session:
                versions = ModelVersionRepository(session)
                row = await versions.add(
                    NewModelVersion(
                        symbol=symbol,
                        weights=champion.artifact.weights,
                        metadata=champion.artifact.metadata,
                        params=version.params,
                        metrics=version.metrics,
                        baseline_metrics=version.baseline_metrics,
                        backtest=version.backtest,
                        train_start=version.train_start,
                        train_end=version.train_end,
                        training_seconds=version.training_seconds,
                    )
                )
                await versions.promote(row.id)
                await ServedPlanRepository(session).add(
                    NewServedPlan(
                        symbol=symbol,
                        model_version_id=row.id,
                        candidate=plan.candidate,
                        point=plan.point,
                        scale=plan.scale,
                        uses_network=plan.uses_network,
                        recalibrated=plan.recalibrated,
                        reason=plan.reason,
                        recipe=plan.recipe,
                        evidence=plan.evidence,
                    )
                )
        return plan
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


def stop_workers(workers: list[Worker], *, quiet: bool = False) -> None:
    """Stop the workers; unless ``quiet``, print each refresh batch's log line (the seconds of
    its fetch, store, forecast, evaluate and first-trainings stages)."""
    for process, _, _ in workers:
        process.send_signal(signal.SIGTERM)
    for process, log, name in workers:
        if process.wait(timeout=60) != 0:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log.read_text()}")
        if quiet:
            continue
        for line in log.read_text(errors="replace").splitlines():
            if "refresh batch of" in line:  # where each batch spent its time
                print(f"    {name}: {line.split('refresh batch of', 1)[1].strip()}", flush=True)


@dataclass(frozen=True, kw_only=True)
class Refreshed:
    """One refresh: ``seconds`` until every symbol had its new forecast (the figure timed),
    ``finished`` until every job of it had finished (the last batches' evaluate stage included),
    what its batches reported, and how many served plans their evaluate stage updated."""

    seconds: float
    finished: float
    failed: int
    forecast: int
    evaluated: int
    plans_updated: int
    #: CPU seconds of the workers and PostgreSQL while the clock ran (:class:`CpuSeconds`).
    cpu: dict[str, float]


class CpuSeconds:
    """CPU seconds (user + system) that the worker processes and this machine's PostgreSQL
    server processes spend between :meth:`start` and :meth:`stop`, read from the kernel's
    per-process accounts: what the timed window cost the machine, beside its wall time. A
    process that cannot be read (gone, or not ours to read) is left out."""

    def __init__(self, worker_pids: list[int]) -> None:
        self._workers = worker_pids
        self._before: dict[int, tuple[str, float]] = {}

    def _snapshot(self) -> dict[int, tuple[str, float]]:
        import psutil

        seen: dict[int, tuple[str, float]] = {}
        for pid in self._workers:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            seen[pid] = ("workers", times.user + times.system)
        for process in psutil.process_iter(["name"]):
            if process.info["name"] != "postgres":
                continue
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            seen[process.pid] = ("postgres", times.user + times.system)
        return seen

    def start(self) -> None:
        self._before = self._snapshot()

    def stop(self) -> dict[str, float]:
        spent = {"workers": 0.0, "postgres": 0.0}
        for pid, (kind, seconds) in self._snapshot().items():
            # A server process forked during the window (a new connection) counts from zero.
            spent[kind] += seconds - self._before.get(pid, (kind, 0.0))[1]
        return spent


async def refresh(
    url: str, symbols: list[str], newest: date, cpu: CpuSeconds | None = None
) -> Refreshed:
    """Enqueue the exchange's refresh, as its schedule does after the close; seconds until every
    symbol has a forecast from its new bar, then the wait for every batch to finish."""
    from datetime import timedelta

    from apscheduler import AsyncScheduler
    from sqlalchemy import func, select

    from db.base import utcnow
    from db.contracts import JobRequest
    from db.engine import create_async_db_engine, create_session_factory
    from db.enqueue import enqueue_jobs
    from db.jobstore import create_data_store, create_event_broker
    from db.kinds import JobKind
    from db.models import ForecastRow, JobRun, JobStatus, ServedPlan
    from db.repositories import JobRepository
    from forecasting.calendar import DEFAULT_EXCHANGE

    engine = create_async_db_engine(url)
    sessions = create_session_factory(engine)
    fresh = select(func.count(func.distinct(ForecastRow.symbol))).where(
        ForecastRow.last_observed_date >= newest
    )
    pending = select(func.count(JobRun.id)).where(
        JobRun.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])
    )
    batches = select(JobRun.id, JobRun.result).where(JobRun.kind == JobKind.REFRESH_BATCH.value)
    try:
        async with sessions() as session:
            before = {row.id for row in await session.execute(batches)}
        since = utcnow()
        async with AsyncScheduler(create_data_store(engine), create_event_broker(url)) as client:
            if cpu is not None:
                cpu.start()
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
                    spent = cpu.stop() if cpu is not None else {}
                    break
                # A COUNT over the growing forecasts table: every 50 ms it took a quarter of a
                # core from the workers it measures; 0.25 s bounds the error at 1% of a 25 s run.
                await asyncio.sleep(0.25)
            while True:  # the batches still evaluating (after the clock has stopped)
                async with sessions() as session:
                    if (await session.execute(pending)).scalar_one() == 0:
                        finished = time.perf_counter() - started
                        break
                await asyncio.sleep(0.25)
            async with sessions() as session:
                counts = await JobRepository(session).count_by_status()
                results = [
                    row.result or {}
                    for row in await session.execute(batches)
                    if row.id not in before
                ]
                updated = (
                    await session.execute(
                        select(func.count(ServedPlan.id)).where(ServedPlan.updated_at >= since)
                    )
                ).scalar_one()
        return Refreshed(
            seconds=elapsed,
            finished=finished,
            failed=counts.get("failed", 0),
            forecast=sum(int(result.get("forecast", 0)) for result in results),
            evaluated=sum(int(result.get("evaluated", 0)) for result in results),
            plans_updated=int(updated),
            cpu=spent,
        )
    finally:
        await engine.dispose()


def prepare_steady_state(
    args: argparse.Namespace, admin: Admin, template: str, csv_dir: Path, workdir: Path
) -> list[str]:
    """The template as after days of service (see the module docstring): bars up to
    ``--warm-up-days`` + 1 sessions before the newest, a first training of A000 through the
    retrain's own functions, its champion and plan copied to every symbol, then one untimed
    refresh per warm-up day, each after the next bar is appended to every CSV file."""
    symbols = write_csvs(args.prices, csv_dir, args.symbols, args.rows, drop=args.warm_up_days)
    template_url = admin.url_for(template)
    asyncio.run(seed(template_url, csv_dir, symbols))
    started = time.perf_counter()
    print(f"training {symbols[0]} as a first retrain (policy {args.policy!r}) ...", flush=True)
    recorded = asyncio.run(train_served(template_url, symbols[0], args.policy))
    if not recorded.promoted or recorded.served_plan_id is None:
        raise RuntimeError(f"the gate did not serve the trained model: {recorded.reason}")
    plan = asyncio.run(copy_served(template_url, symbols[0], symbols))
    print(
        f"  trained and recorded in {time.perf_counter() - started:.1f} s: plan {plan.candidate} "
        f"(point {plan.point}, scale {plan.scale}, network {plan.uses_network}, recalibrated "
        f"{plan.recalibrated}), copied to every symbol with a champion version of its own",
        flush=True,
    )
    processes = max(int(n) for n in args.processes.split(","))
    for drop in range(args.warm_up_days, 0, -1):
        write_csvs(args.prices, csv_dir, args.symbols, args.rows, drop=drop)
        newest = newest_bar(csv_dir, symbols)
        workers = start_workers(
            processes, template_url, csv_dir, workdir, args.concurrency, args.batch_size
        )
        try:
            day = asyncio.run(refresh(template_url, symbols, newest))
        finally:
            stop_workers(workers, quiet=True)
        if day.failed:
            raise RuntimeError(f"{day.failed} jobs failed; see {workdir}/worker-*.log")
        print(
            f"  warm-up refresh up to {newest}: {day.forecast} forecast, {day.evaluated} steps "
            f"evaluated, {day.plans_updated} plans updated ({day.finished:.1f} s)",
            flush=True,
        )
    write_csvs(args.prices, csv_dir, args.symbols, args.rows)
    return symbols


def main() -> None:
    args = parse_args()
    from stockcast.schema import upgrade_database

    admin = Admin(args.admin_url)
    setup_started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="stockcast-bench-") as tmp:
        workdir = Path(tmp)
        csv_dir = workdir / "prices"
        template = "stockcast_bench_refresh_template"
        template_url = admin.create(template)
        upgrade_database(template_url)
        if args.bare:
            symbols = write_csvs(args.prices, csv_dir, args.symbols, args.rows)
            print(f"training one champion on {symbols[0]} ...", flush=True)
            artifact = train_champion(csv_dir, symbols[0])
            asyncio.run(seed(template_url, csv_dir, symbols, artifact))
            described = (
                "one model trained once and reused as every symbol's champion, no served plan, "
                "no earlier forecasts"
            )
        else:
            symbols = prepare_steady_state(args, admin, template, csv_dir, workdir)
            described = (
                f"A000's first training and plan copied to every symbol, "
                f"{args.warm_up_days} untimed daily refreshes before the timed one"
            )
        newest = newest_bar(csv_dir, symbols)
        print(
            f"{len(symbols)} symbols A000..A{len(symbols) - 1:03d} from 8 CSV files "
            f"({args.rows} bars each, the newest one ingested by the timed refresh); {described} "
            f"(lookback 60, horizon 5, hidden 64, 2 layers); {os.cpu_count()} CPU cores; "
            f"PostgreSQL; {args.concurrency} job slots per worker process; setup took "
            f"{time.perf_counter() - setup_started:.1f} s",
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
        finishes: dict[tuple[int, int | None], list[float]] = {setup: [] for setup in setups}
        spent: dict[tuple[int, int | None], list[dict[str, float]]] = {s: [] for s in setups}
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
                    cpu = CpuSeconds([process.pid for process, _, _ in workers])
                    try:
                        result = asyncio.run(refresh(url, symbols, newest, cpu))
                    finally:
                        stop_workers(workers)
                        admin.drop(name)
                    if result.failed:
                        raise RuntimeError(
                            f"{result.failed} jobs failed; see {workdir}/worker-*.log"
                        )
                    timings[processes, batches].append(result.seconds)
                    finishes[processes, batches].append(result.finished)
                    spent[processes, batches].append(result.cpu)
                    print(
                        f"  {processes} worker(s){_batches_label(batches)}, round {round_ + 1}: "
                        f"{result.seconds:.2f} s (every batch done at {result.finished:.2f} s; "
                        f"{result.forecast} forecast, {result.evaluated} steps evaluated, "
                        f"{result.plans_updated} plans updated; {_cpu_label(result.cpu)})",
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
        done = statistics.median(finishes[processes, batches])
        busy = {
            kind: statistics.median(round_[kind] for round_ in spent[processes, batches])
            for kind in ("workers", "postgres")
        }
        print(
            f"  {processes} worker process(es){_batches_label(batches)}: {seconds:7.2f} s  "
            f"({len(symbols) / seconds:6.1f} symbols/s; every batch done: {done:7.2f} s; "
            f"{_cpu_label(busy)}, {(busy['workers'] + busy['postgres']) / seconds:.2f} cores busy)"
        )
    for batches in at_once:
        if (1, batches) in medians and (2, batches) in medians:
            ratio = medians[1, batches] / medians[2, batches]
            print(f"  speed-up (1 / 2){_batches_label(batches)}: {ratio:6.2f}x")


def _cpu_label(cpu: dict[str, float]) -> str:
    return f"CPU while timed: workers {cpu['workers']:.1f} s, PostgreSQL {cpu['postgres']:.1f} s"


def _batches_label(batches: int | None) -> str:
    return "" if batches is None else f", {batches} batch(es) at once"


if __name__ == "__main__":
    main()
