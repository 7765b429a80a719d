"""Throughput of the API's hot path (the latest forecast) against ``/health`` and against a bare
Litestar app, under each ASGI server, and the latency of ``GET /symbols`` and of an on-demand
prediction with a cached model.

    .venv/bin/python bench/api.py [--duration 8] [--rounds 3] [--connections 32] [--symbols 1000]
                                  [--servers uvicorn,granian] [--database-url postgresql://...]
                                  [--tool auto|wrk|python]

Builds a database holding ``--symbols`` symbols' forecasts (and one real LSTM champion, for
``/predict``), starts the API once per server (``python -m web`` with ``STOCKCAST_API_SERVER``,
one worker each) and the bare reference app (``bench/bare_app.py``) under granian, all on
loopback, and loads ``GET /health`` and ``GET /symbols/{symbol}/forecast`` (every symbol in turn)
with the same load: ``--connections`` keep-alive connections from a separate process (``wrk`` when
installed, else a small asyncio HTTP/1.1 client). Rounds interleave the servers and endpoints, so
the ratios are measured in one run. Prints requests/s and p50/p99 per round, the medians, the
ratios the README quotes, then ``GET /symbols`` and ``POST /predict`` latencies. Writes
``bench/results/api.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SHARED_PRICES = ROOT.parent / "shared" / "data" / "prices"
API_KEY = "bench-key-0123456789abcdef"


@dataclass(frozen=True)
class LoadResult:
    path: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per endpoint (medians)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--predictions", type=int, default=50)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temp dir")
    parser.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--symbols", type=int, default=1000, help="symbols with a cached forecast")
    parser.add_argument(
        "--servers", default="uvicorn,granian", help="comma-separated: uvicorn, granian"
    )
    parser.add_argument("--listings", type=int, default=100, help="GET /symbols requests")
    parser.add_argument(
        "--during-training",
        nargs="?",
        const="symbol",
        choices=("symbol", "global"),
        help=(
            "also load the forecast read while a scheduler node trains: 'symbol' (the default) "
            "DIS through POST /train, 'global' the global LSTM on every real symbol of --prices "
            "through POST /train/global"
        ),
    )
    parser.add_argument(
        "--prices",
        type=Path,
        default=SHARED_PRICES,
        help="a csv:DIR price directory with DIS.csv (default: ../shared/data/prices)",
    )
    return parser.parse_args()


# --------------------------------------------------------------------------- the database


def real_symbols(prices: Path) -> list[str]:
    return sorted(path.stem for path in prices.glob("*.csv")) if prices.is_dir() else []


async def store_real_bars(url: str, prices: Path) -> None:
    """Every real symbol's bars (what a global retrain of the watched real symbols reads)."""
    from db.engine import create_async_db_engine, create_session_factory
    from db.repositories import PriceRepository
    from forecasting.bars import read_bars_csv
    from scheduler.conversions import frame_to_records

    engine = create_async_db_engine(url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            for name in real_symbols(prices):
                bars = read_bars_csv(str(prices / f"{name}.csv"))
                await PriceRepository(session).upsert(name, frame_to_records(bars))
    finally:
        await engine.dispose()


def symbols(count: int, prices: Path = SHARED_PRICES) -> list[str]:
    real = real_symbols(prices)
    synthetic = [f"T{index:04d}" for index in range(count)]
    return (real + [s for s in synthetic if s not in real])[:count]


def train_bench_model(prices: Path) -> tuple[Any, list[Any]]:
    """A real LSTM in the service's default shape (hidden 64, 2 layers, window 60, 5 steps),
    fitted for one epoch: its speed, not its skill, is what is measured."""
    from db.repositories import BarRecord
    from forecasting.bars import read_bars_csv
    from forecasting.config import ModelConfig, TrainConfig
    from forecasting.model import LSTMForecaster

    bars = read_bars_csv(str(prices / "DIS.csv")).tail(700).reset_index(drop=True)
    model = LSTMForecaster(
        ModelConfig(), TrainConfig(epochs=1, accelerator="cpu", max_history=None)
    ).fit(bars)
    records = [
        BarRecord(
            date=row.date.date(),
            open=float(row.open),
            high=float(row.high),
            low=float(row.low),
            close=float(row.close),
            adj_close=None,
            volume=float(row.volume),
        )
        for row in bars.itertuples(index=False)
    ]
    return model.to_artifact(symbol="DIS", metrics={"lstm_mase": 1.0}), records


async def seed(url: str, names: list[str], artifact: Any, bars: list[Any]) -> None:
    from db.contracts import ForecastReady
    from db.engine import create_async_db_engine, create_session_factory
    from db.repositories import (
        EventRepository,
        ForecastRepository,
        ForecastStepRecord,
        ModelVersionRepository,
        NewModelVersion,
        PriceRepository,
        SymbolRepository,
    )
    from forecasting.calendar import DEFAULT_EXCHANGE

    engine = create_async_db_engine(url)
    sessions = create_session_factory(engine)
    issued = datetime.now(UTC).replace(microsecond=0)
    last = date.today() - timedelta(days=1)
    try:
        async with sessions() as session, session.begin():
            versions = ModelVersionRepository(session)
            champion = await versions.add(
                NewModelVersion(
                    symbol="DIS",
                    weights=artifact.weights,
                    metadata=artifact.metadata,
                    model_name="disney_v1",
                    metrics={"lstm_mase": 0.97, "lstm_theil_u2": 1.01},
                )
            )
            await versions.promote(champion.id)
            await PriceRepository(session).upsert("DIS", bars)
            for index, name in enumerate(names):
                await SymbolRepository(session).add(
                    symbol=name, exchange=DEFAULT_EXCHANGE, horizon=5, lookback=60
                )
                base = 50.0 + index
                await ForecastRepository(session).add_batch(
                    symbol=name,
                    model_version_id=champion.id if name == "DIS" else None,
                    model_kind="lstm" if name == "DIS" else "naive",
                    issued_at=issued,
                    last_observed_date=last,
                    last_close=base,
                    steps=[
                        ForecastStepRecord(
                            step=step,
                            target_date=last + timedelta(days=step),
                            point=base * (1 + 0.001 * step),
                            lower_80=base * (1 - 0.02 * step),
                            upper_80=base * (1 + 0.02 * step),
                            lower_95=base * (1 - 0.03 * step),
                            upper_95=base * (1 + 0.03 * step),
                            naive=base,
                        )
                        for step in range(1, 6)
                    ],
                )
                ready = ForecastReady(
                    issued_at=issued,
                    model_kind="lstm" if name == "DIS" else "naive",
                    model_version_id=champion.id if name == "DIS" else None,
                    steps=5,
                    last_observed_date=last,
                )
                await EventRepository(session).append(ready, symbol=name)
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    url: str, data_dir: Path, prices: Path, port: int, server: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STOCKCAST_DATABASE_URL": url,
        "STOCKCAST_DATA_DIR": str(data_dir),
        "STOCKCAST_PORT": str(port),
        "STOCKCAST_API_KEYS": API_KEY,
        "STOCKCAST_API_SERVER": server,
        "STOCKCAST_SOURCE": f"csv:{prices}",
        "STOCKCAST_LOG_LEVEL": "WARNING",
        "STOCKCAST_RATE_LIMIT_PER_MINUTE": "100000",
    }
    process = subprocess.Popen([sys.executable, "-m", "web"], cwd=ROOT, env=env)
    _await_ready(process, f"http://127.0.0.1:{port}", "/ready")
    return process


def _await_ready(process: subprocess.Popen[bytes], base: str, path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("a server exited during start-up")
        try:
            if httpx.get(f"{base}{path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("a server did not become ready")


# --------------------------------------------------------------------------- load generators

_WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"p50_us\\": %%d, \\"p99_us\\": %%d, \\"errors\\": %%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
"""


def run_wrk(base: str, paths: list[str], connections: int, duration: float) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % ", ".join(json.dumps(path) for path in paths))
    try:
        completed = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(duration))}s",
                "-s",
                script.name,
                base,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script.name)
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
    data = json.loads(line.removeprefix("RESULT "))
    return LoadResult(
        path=paths[0] if len(paths) == 1 else f"{len(paths)} paths like {paths[0]}",
        requests_per_s=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
        errors=data["errors"],
    )


_PYTHON_LOADER = textwrap.dedent(
    """
    import asyncio, json, sys, time

    async def worker(host, port, paths, offset, deadline, latencies, errors):
        reader, writer = await asyncio.open_connection(host, port)
        i = offset
        while time.perf_counter() < deadline:
            path = paths[i % len(paths)]
            i += 1
            started = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\\r\\nHost: {host}\\r\\n\\r\\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            length = 0
            for line in head.split(b"\\r\\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 2"):
                errors[0] += 1
        writer.close()

    async def main():
        host, port, connections, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
        paths = json.loads(sys.argv[5])
        latencies, errors = [], [0]
        started = time.perf_counter()
        deadline = started + duration
        await asyncio.gather(*(worker(host, port, paths, n, deadline, latencies, errors) for n in range(connections)))
        elapsed = time.perf_counter() - started
        latencies.sort()
        pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
        print("RESULT " + json.dumps({"requests": len(latencies), "seconds": elapsed,
              "p50": pick(0.5), "p99": pick(0.99), "errors": errors[0]}))

    asyncio.run(main())
    """
)


def run_python(base: str, paths: list[str], connections: int, duration: float) -> LoadResult:
    port = base.rsplit(":", 1)[1]
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            _PYTHON_LOADER,
            "127.0.0.1",
            port,
            str(connections),
            str(duration),
            json.dumps(paths),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
    data = json.loads(line.removeprefix("RESULT "))
    return LoadResult(
        path=paths[0] if len(paths) == 1 else f"{len(paths)} paths like {paths[0]}",
        requests_per_s=data["requests"] / data["seconds"],
        p50_ms=data["p50"] * 1000,
        p99_ms=data["p99"] * 1000,
        requests=data["requests"],
        errors=data["errors"],
    )


def median_of(results: list[LoadResult]) -> dict[str, float]:
    return {
        "requests_per_s": statistics.median(r.requests_per_s for r in results),
        "p50_ms": statistics.median(r.p50_ms for r in results),
        "p99_ms": statistics.median(r.p99_ms for r in results),
        "errors": sum(r.errors for r in results),
    }


def measure_predictions(base: str, count: int) -> dict[str, float]:
    headers = {"X-API-Key": API_KEY}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        first = client.post("/predict", json={"symbol": "DIS"})
        first.raise_for_status()
        cold = first.json()
        client_ms: list[float] = []
        server_ms: list[float] = []
        inference_ms: list[float] = []
        for _ in range(count):
            started = time.perf_counter()
            response = client.post(
                "/predict", json={"model_name": "disney_v1", "symbol": "DIS", "lookback_days": 60}
            )
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            body = response.json()
            assert body["model_cached"], "the model should be cached after the first prediction"
            client_ms.append(elapsed)
            server_ms.append(body["latency_ms"])
            inference_ms.append(body["inference_ms"])
    return {
        "first_prediction_ms": cold["latency_ms"],
        "client_median_ms": statistics.median(client_ms),
        "server_median_ms": statistics.median(server_ms),
        "inference_median_ms": statistics.median(inference_ms),
        "count": count,
    }


def start_bare(port: int) -> subprocess.Popen[bytes]:
    """The bare reference app under granian (one worker, like the service)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--workers",
            "1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "bench.bare_app:app",
        ],
        cwd=ROOT,
    )
    _await_ready(process, f"http://127.0.0.1:{port}", "/health")
    return process


def main() -> None:
    args = parse_args()
    tool = args.tool
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
    load = run_wrk if tool == "wrk" else run_python
    prices: Path = args.prices
    if not (prices / "DIS.csv").is_file():
        raise SystemExit(f"needs {prices}/DIS.csv: pass a price directory with --prices DIR")
    servers = [name for name in args.servers.split(",") if name]

    from stockcast.schema import upgrade_database

    processes: dict[str, subprocess.Popen[bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="stockcast-bench-") as tmp:
        data_dir = Path(tmp)
        url = args.database_url or f"sqlite:///{data_dir / 'bench.db'}"
        print(
            f"database: {url.split('@')[-1]}; {args.symbols} symbols; load: {tool}, "
            f"{args.connections} connections, {args.duration:g} s x {args.rounds} rounds per "
            f"endpoint; servers: {', '.join(servers)} and a bare Litestar app under granian",
            flush=True,
        )
        upgrade_database(url)
        names = symbols(args.symbols, prices)
        print("training the benchmark model (one epoch) ...", flush=True)
        artifact, bars = train_bench_model(prices)
        asyncio.run(seed(url, names, artifact, bars))
        bases: dict[str, str] = {}
        try:
            for server in servers:
                port = free_port()
                processes[server] = start_server(url, data_dir, prices, port, server)
                bases[server] = f"http://127.0.0.1:{port}"
            port = free_port()
            processes["bare"] = start_bare(port)
            bases["bare"] = f"http://127.0.0.1:{port}"
            forecast_paths = [f"/symbols/{name}/forecast" for name in names]
            runs: dict[str, list[LoadResult]] = {}
            for base in bases.values():
                # Warm up: every symbol once (fills the cache), and the interpreter.
                load(base, forecast_paths, args.connections, 2)
                load(base, ["/health"], args.connections, 2)
            # Rounds interleave the servers, so a noisy neighbour hurts them alike.
            for round_number in range(1, args.rounds + 1):
                for server, base in bases.items():
                    for endpoint, paths in (("health", ["/health"]), ("forecast", forecast_paths)):
                        result = load(base, paths, args.connections, args.duration)
                        runs.setdefault(f"{server} {endpoint}", []).append(result)
                        print(
                            f"round {round_number} {server:<8} {endpoint:<9} "
                            f"{result.requests_per_s:9.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                            f"p99 {result.p99_ms:6.2f} ms  errors {result.errors}",
                            flush=True,
                        )
            predictions = measure_predictions(bases[servers[0]], args.predictions)
            listing = measure_listing(bases[servers[0]], args.listings)
            training = (
                measure_during_training(
                    url, data_dir, prices, bases[servers[0]], forecast_paths, load, args
                )
                if args.during_training
                else None
            )
        finally:
            for process in processes.values():
                process.terminate()
                process.wait(timeout=30)

    medians = {key: median_of(results) for key, results in runs.items()}
    bare = medians["bare forecast"]["requests_per_s"]
    summary: dict[str, Any] = {
        "tool": tool,
        "connections": args.connections,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "symbols": len(names),
        "medians": medians,
        "ratios": {
            server: {
                "forecast_to_health": medians[f"{server} forecast"]["requests_per_s"]
                / medians[f"{server} health"]["requests_per_s"],
                "forecast_to_bare_granian": medians[f"{server} forecast"]["requests_per_s"] / bare,
            }
            for server in servers
        },
        "predict": predictions,
        "list_symbols": listing,
        "during_training": training,
        "runs": {key: [asdict(r) for r in results] for key, results in runs.items()},
    }
    print()
    print(
        f"{'server / endpoint':<30}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}   (medians of {args.rounds})"
    )
    for key, figures in medians.items():
        print(
            f"{key:<30}{figures['requests_per_s']:>10.0f}{figures['p50_ms']:>9.2f}"
            f"{figures['p99_ms']:>9.2f}"
        )
    for server, ratio in summary["ratios"].items():
        print(
            f"{server}: forecast / health {ratio['forecast_to_health']:.2f} (target >= 0.85), "
            f"forecast / bare Litestar under granian {ratio['forecast_to_bare_granian']:.2f} "
            "(target >= 0.65)"
        )
    print(
        f"POST /predict, cached model: median {predictions['client_median_ms']:.1f} ms at the client, "
        f"{predictions['server_median_ms']:.1f} ms in the server "
        f"({predictions['inference_median_ms']:.2f} ms inference); first call "
        f"{predictions['first_prediction_ms']:.0f} ms (loads torch and the model)"
    )
    print(
        f"GET /symbols ({len(names)} symbols, first page): p50 {listing['p50_ms']:.1f} ms, "
        f"p99 {listing['p99_ms']:.1f} ms over {listing['requests']} sequential requests "
        "(target p50 <= 50 ms)"
    )
    if training is not None:
        idle = medians[f"{servers[0]} forecast"]
        busy = training["forecast"]
        print(
            f"{servers[0]} forecast read while {training['training']} trains: "
            f"{busy['requests_per_s']:.0f} req/s, "
            f"p50 {busy['p50_ms']:.2f} ms, p99 {busy['p99_ms']:.2f} ms (target p99 <= 50 ms); "
            f"idle p99 {idle['p99_ms']:.2f} ms; training child nice {training['child_nice']}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "api.json").write_text(json.dumps(summary, indent=2) + "\n")


def measure_during_training(
    url: str,
    data_dir: Path,
    prices: Path,
    base: str,
    paths: list[str],
    load: Any,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Start a scheduler node on the same database, ask the API for a training (the way a user
    would): of DIS, or of the global LSTM on every real symbol in ``prices`` (their bars stored
    first), and load the forecast read while the node's training child runs."""
    import psutil

    if args.during_training == "global":
        asyncio.run(store_real_bars(url, prices))
        route = "/train/global"
        body: dict[str, Any] = {"symbols": real_symbols(prices), "epochs": 200, "folds": 1}
    else:
        route, body = "/train", {"symbol": "DIS", "epochs": 200, "folds": 3}

    env = {
        **os.environ,
        "STOCKCAST_DATABASE_URL": url,
        "STOCKCAST_DATA_DIR": str(data_dir),
        "STOCKCAST_SOURCE": f"csv:{prices}",
        "STOCKCAST_LOG_LEVEL": "WARNING",
        "STOCKCAST_MLFLOW_TRACKING_URI": f"sqlite:///{data_dir / 'mlflow.db'}",
        # Every epoch runs: the training outlasts the measurement.
        "STOCKCAST_TRAIN_PATIENCE": "200",
    }
    node = subprocess.Popen([sys.executable, "-m", "scheduler", "--poll-seconds", "0.5"], env=env)
    try:
        response = httpx.post(
            f"{base}{route}", json=body, headers={"X-API-Key": API_KEY}, timeout=30
        )
        response.raise_for_status()
        deadline = time.monotonic() + 180
        children: list[Any] = []
        while not children:
            if time.monotonic() > deadline or node.poll() is not None:
                raise SystemExit("the training child did not start")
            children = psutil.Process(node.pid).children(recursive=True)
            time.sleep(0.5)
        time.sleep(3)  # the child is past its imports and fitting
        results = []
        for _ in range(args.rounds):
            results.append(load(base, paths, args.connections, args.duration))
            if not any(child.is_running() for child in children):
                raise SystemExit("the training ended during the measurement; raise its epochs")
        nice = children[0].nice()
    finally:
        node.terminate()
        node.wait(timeout=60)
    return {
        "training": route,
        "forecast": median_of(results),
        "child_nice": nice,
        "runs": [asdict(r) for r in results],
    }


def measure_listing(base: str, count: int) -> dict[str, float]:
    """Sequential ``GET /symbols`` (the default first page) latencies at the client."""
    latencies = []
    with httpx.Client(base_url=base, timeout=30) as client:
        client.get("/symbols").raise_for_status()
        for _ in range(count):
            started = time.perf_counter()
            client.get("/symbols").raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return {
        "requests": len(latencies),
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


if __name__ == "__main__":
    main()
