"""Throughput of the API's hot path (the latest forecast) against ``/health``, and the latency of
an on-demand prediction with a cached model.

    .venv/bin/python bench/api.py [--duration 8] [--rounds 3] [--connections 32]
                                  [--database-url postgresql://...] [--tool auto|wrk|python]

Builds a database holding 100 symbols' forecasts (and one real LSTM champion, for ``/predict``),
starts the API as its own process (``python -m web``, uvicorn, one worker) on loopback, and loads
``GET /health`` and ``GET /symbols/{symbol}/forecast`` (the 100 symbols in turn) alternately with
the same load: ``--connections`` keep-alive connections from a separate process (``wrk`` when
installed, else a small asyncio HTTP/1.1 client). Prints requests/s and p50/p99 latency per round,
the medians over the rounds, their ratio, then the median client-side and server-side latency of
``POST /predict`` once the model is loaded. Writes ``bench/results/api.json``.
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
SYMBOL_COUNT = 100


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
    return parser.parse_args()


# --------------------------------------------------------------------------- the database


def symbols() -> list[str]:
    real = (
        sorted(path.stem for path in SHARED_PRICES.glob("*.csv")) if SHARED_PRICES.is_dir() else []
    )
    synthetic = [f"T{index:03d}" for index in range(SYMBOL_COUNT)]
    return (real + [s for s in synthetic if s not in real])[:SYMBOL_COUNT]


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
    from db.engine import create_async_db_engine, create_session_factory
    from db.kinds import EventType
    from db.repositories import (
        EventRepository,
        ForecastRepository,
        ForecastStepRecord,
        ModelVersionRepository,
        NewModelVersion,
        PriceRepository,
        SymbolRepository,
    )

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
                await SymbolRepository(session).add(symbol=name, horizon=5, lookback=60)
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
                await EventRepository(session).append(EventType.FORECAST_READY, symbol=name)
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, data_dir: Path, prices: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STOCKCAST_DATABASE_URL": url,
        "STOCKCAST_DATA_DIR": str(data_dir),
        "STOCKCAST_PORT": str(port),
        "STOCKCAST_API_KEYS": API_KEY,
        "STOCKCAST_SOURCE": f"csv:{prices}",
        "STOCKCAST_LOG_LEVEL": "WARNING",
        "STOCKCAST_RATE_LIMIT_PER_MINUTE": "100000",
    }
    process = subprocess.Popen([sys.executable, "-m", "web"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the API exited during start-up")
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("the API did not become ready")


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


def main() -> None:
    args = parse_args()
    tool = args.tool
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
    load = run_wrk if tool == "wrk" else run_python
    prices = SHARED_PRICES if (SHARED_PRICES / "DIS.csv").is_file() else None
    if prices is None:
        raise SystemExit(f"needs {SHARED_PRICES}/DIS.csv (the shared test prices)")

    from stockcast.schema import upgrade_database

    with tempfile.TemporaryDirectory(prefix="stockcast-bench-") as tmp:
        data_dir = Path(tmp)
        url = args.database_url or f"sqlite:///{data_dir / 'bench.db'}"
        print(
            f"database: {url.split('@')[-1]}; load: {tool}, {args.connections} connections, "
            f"{args.duration:g} s x {args.rounds} rounds per endpoint",
            flush=True,
        )
        upgrade_database(url)
        names = symbols()
        print("training the benchmark model (one epoch) ...", flush=True)
        artifact, bars = train_bench_model(prices)
        asyncio.run(seed(url, names, artifact, bars))
        port = free_port()
        server = start_server(url, data_dir, prices, port)
        base = f"http://127.0.0.1:{port}"
        try:
            forecast_paths = [f"/symbols/{name}/forecast" for name in names]
            # Warm up: every symbol once (fills the cache), and the interpreter.
            load(base, forecast_paths, args.connections, 2)
            load(base, ["/health"], args.connections, 2)
            health: list[LoadResult] = []
            forecast: list[LoadResult] = []
            for round_number in range(1, args.rounds + 1):
                for name, paths, results in (
                    ("health", ["/health"], health),
                    ("forecast", forecast_paths, forecast),
                ):
                    result = load(base, paths, args.connections, args.duration)
                    results.append(result)
                    print(
                        f"round {round_number} {name:<9} {result.requests_per_s:9.0f} req/s  "
                        f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                        f"errors {result.errors}",
                        flush=True,
                    )
            predictions = measure_predictions(base, args.predictions)
        finally:
            server.terminate()
            server.wait(timeout=30)

    summary = {
        "tool": tool,
        "connections": args.connections,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "symbols": len(names),
        "health": median_of(health),
        "forecast": median_of(forecast),
        "predict": predictions,
        "runs": {"health": [asdict(r) for r in health], "forecast": [asdict(r) for r in forecast]},
    }
    ratio = summary["forecast"]["requests_per_s"] / summary["health"]["requests_per_s"]
    summary["forecast_to_health_ratio"] = ratio
    print()
    print(
        f"{'endpoint':<34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}   (medians of {args.rounds} runs)"
    )
    for label, key in (("GET /health", "health"), ("GET /symbols/{symbol}/forecast", "forecast")):
        figures = summary[key]
        print(
            f"{label:<34}{figures['requests_per_s']:>10.0f}{figures['p50_ms']:>9.2f}{figures['p99_ms']:>9.2f}"
        )
    print(f"forecast / health throughput: {ratio:.2f} (target >= 0.70)")
    print(
        f"POST /predict, cached model: median {predictions['client_median_ms']:.1f} ms at the client, "
        f"{predictions['server_median_ms']:.1f} ms in the server "
        f"({predictions['inference_median_ms']:.2f} ms inference); first call "
        f"{predictions['first_prediction_ms']:.0f} ms (loads torch and the model)"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "api.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
