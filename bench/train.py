"""Training cost of the Lightning path against a plain PyTorch loop on the same network, data,
batch size and epochs, plus single-forecast latency through ``forecasting.predictor``.

    .venv/bin/python bench/train.py [--symbol SPY] [--epochs 5] [--rounds 2] [--threads N]

Each measurement runs in a fresh child process so its peak RSS is its own. Prints seconds per
epoch (median over epochs and rounds), peak RSS, the overhead ratio, and the median latency of
200 single forecasts (``LSTMPredictor.predict``: features, network, calendar dates) and of the
network step alone (``predict_log_returns`` for one origin), with one torch thread as
``forecasting.predictor.limit_inference_threads`` sets it in the API. Both training paths use
``--threads`` intra-op threads (default: what training picks, ``default_train_threads()``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_PRICES = Path(__file__).resolve().parents[2] / "shared" / "data" / "prices"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbol", default="SPY")
    parser.add_argument("--prices", type=Path, default=DEFAULT_PRICES)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch threads for both training paths")
    parser.add_argument("--child", choices=("lightning", "plain"), help=argparse.SUPPRESS)
    return parser.parse_args()


def _setup(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from forecasting.bars import read_bars_csv
    from forecasting.config import ModelConfig, TrainConfig

    bars = read_bars_csv(str(args.prices / f"{args.symbol}.csv"))
    # patience = epochs: every epoch runs, so both paths do the same work.
    train = TrainConfig(
        epochs=args.epochs,
        patience=args.epochs,
        accelerator="cpu",
        max_history=None,
        num_threads=args.threads,
    )
    return bars, ModelConfig(), train


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_lightning(args: argparse.Namespace) -> dict[str, Any]:
    from forecasting.callbacks import EpochLosses
    from forecasting.model import LSTMForecaster
    from forecasting.predictor import LSTMPredictor, limit_inference_threads

    bars, model_config, train_config = _setup(args)
    stamps: list[float] = []

    def stamp(_: EpochLosses) -> None:
        stamps.append(time.perf_counter())

    model = LSTMForecaster(model_config, train_config, epoch_sinks=[stamp])
    started = time.perf_counter()
    model.fit(bars)
    epoch_seconds = [b - a for a, b in zip([started, *stamps[:-1]], stamps, strict=True)]
    summary = model.summary
    assert summary is not None
    predictor = LSTMPredictor.from_artifact(model.to_artifact())
    limit_inference_threads(1)
    predictor.predict(bars)  # warm the calendar cache and the network
    forecast_ms = []
    for _ in range(200):
        t0 = time.perf_counter()
        predictor.predict(bars)
        forecast_ms.append((time.perf_counter() - t0) * 1000.0)
    last = [len(bars) - 1]
    network_ms = []
    for _ in range(200):
        t0 = time.perf_counter()
        predictor.predict_log_returns(bars, last)
        network_ms.append((time.perf_counter() - t0) * 1000.0)
    return {
        "epoch_seconds": epoch_seconds,
        "fit_seconds": summary.training_seconds,
        "train_windows": summary.train_windows,
        "val_windows": summary.val_windows,
        "rows": summary.rows,
        "peak_rss_mb": _peak_rss_mb(),
        "forecast_ms_median": statistics.median(forecast_ms),
        "network_ms_median": statistics.median(network_ms),
    }


def run_plain(args: argparse.Namespace) -> dict[str, Any]:
    """The same network, data, loader, optimiser and validation pass, without Lightning."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from forecasting.model import default_train_threads
    from forecasting.network import LSTMNetwork, NetworkSpec, student_t_nll
    from forecasting.windowing import prepare_training_windows

    bars, config, train = _setup(args)
    torch.set_num_threads(train.num_threads or default_train_threads())
    windows = prepare_training_windows(
        bars, config, val_fraction=train.val_fraction, cal_fraction=train.calibration_fraction
    )
    torch.manual_seed(train.seed)
    network = LSTMNetwork(NetworkSpec.for_model(config))
    optimiser = torch.optim.Adam(network.parameters(), lr=train.learning_rate)
    loss_fn = student_t_nll if config.head == "student_t" else nn.MSELoss()
    train_loader = DataLoader(
        TensorDataset(
            torch.from_numpy(windows.train_inputs), torch.from_numpy(windows.train_targets)
        ),
        batch_size=train.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(train.seed),
    )
    val_loader = DataLoader(
        TensorDataset(torch.from_numpy(windows.val_inputs), torch.from_numpy(windows.val_targets)),
        batch_size=max(train.batch_size, 256),
    )
    epoch_seconds = []
    started = time.perf_counter()
    for _ in range(train.epochs):
        t0 = time.perf_counter()
        network.train()
        for inputs, targets in train_loader:
            optimiser.zero_grad()
            loss = loss_fn(network(inputs), targets)
            loss.backward()
            optimiser.step()
        network.eval()
        with torch.no_grad():
            for inputs, targets in val_loader:
                loss_fn(network(inputs), targets)
        epoch_seconds.append(time.perf_counter() - t0)
    return {
        "epoch_seconds": epoch_seconds,
        "fit_seconds": time.perf_counter() - started,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _child(args: argparse.Namespace, path: str) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--child", path, "--symbol", args.symbol,
        "--prices", str(args.prices), "--epochs", str(args.epochs),
        *(["--threads", str(args.threads)] if args.threads else []),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def main() -> None:
    args = parse_args()
    if args.child:
        runner = run_lightning if args.child == "lightning" else run_plain
        print(json.dumps(runner(args)))
        return
    from forecasting.model import default_train_threads

    threads = args.threads or default_train_threads()
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict[str, Any]]] = {"lightning": [], "plain": []}
    for round_index in range(args.rounds):
        # Alternate the order so drift in machine load hits both paths alike.
        order = ("lightning", "plain") if round_index % 2 == 0 else ("plain", "lightning")
        for path in order:
            runs[path].append(_child(args, path))
    per_epoch = {
        path: statistics.median(s for r in results for s in r["epoch_seconds"])
        for path, results in runs.items()
    }
    rss = {path: max(r["peak_rss_mb"] for r in results) for path, results in runs.items()}
    first = runs["lightning"][0]
    print(
        f"{args.symbol}: {first['rows']} rows, {first['train_windows']} training and "
        f"{first['val_windows']} validation windows; ModelConfig() defaults (hidden 64, 2 layers, "
        f"lookback 60, horizon 5), batch 64, {args.epochs} epochs x {args.rounds} rounds, CPU, "
        f"{threads} torch thread(s) for training, 1-min load {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    print(f"{'path':<12}{'s/epoch (median)':>18}{'peak RSS MB':>14}")
    for path in ("lightning", "plain"):
        print(f"{path:<12}{per_epoch[path]:>18.3f}{rss[path]:>14.0f}")
    print(f"Lightning overhead ratio: {per_epoch['lightning'] / per_epoch['plain']:.3f}")
    forecast = statistics.median(r["forecast_ms_median"] for r in runs["lightning"])
    network = statistics.median(r["network_ms_median"] for r in runs["lightning"])
    print(f"single forecast via forecasting.predictor (median of 200): {forecast:.3f} ms")
    print(f"  of which the network step for one origin (median of 200): {network:.3f} ms")


if __name__ == "__main__":
    main()
