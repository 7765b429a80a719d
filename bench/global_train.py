"""Training cost of the global LSTM against per-symbol LSTMs, cold and warm started, and the
weekly retraining budget of a 1,000-symbol watchlist in CPU-hours.

    .venv/bin/python bench/global_train.py [--prices DIR] [--symbols 100] [--epochs 2]
        [--batch-size 64] [--threads 1] [--per-symbol SPY] [--warm-epochs 3] [--out FILE]
    .venv/bin/python bench/global_train.py --as-served --symbols 1000 [--prices DIR]

1. ``--symbols`` synthetic symbols of ``--rows`` bars each, made by block-resampling (20-day
   blocks) the real daily log returns, ranges and volumes of the CSVs in ``--prices``: realistic
   for throughput, meaningless for accuracy. One global fit of ``--epochs`` epochs (patience =
   epochs, so every epoch runs) measures CPU seconds per epoch; the epoch is linear in the
   windows, so the 1,000-symbol figure is extrapolated from it unless ``--symbols 1000``.
2. ``--per-symbol SYMBOL``: one scheduled retrain of that real symbol with the service's
   defaults (walk-forward backtest + final fit, ``forecasting.training.train_challenger``), cold
   and then warm started from the cold run's artifact (``--warm-epochs``), in CPU seconds.
3. The weekly budget: per-symbol (the measured retrain x 1,000), global (``folds + 1`` global
   fits of ``--global-epochs`` epochs, the cold fits' epochs measured on the real symbols) and
   warm started (the first fold cold, the other folds and the final fit ``--warm-epochs``).

``--as-served`` instead times one global fit of ``--symbols`` symbols exactly as the
``retrain_global`` job configures it (ensemble, early stopping, sampled epochs of
``windows_per_epoch`` windows, the worker's thread count): from the bars to every symbol's
calibrated predictor, in wall and CPU seconds.

CPU seconds are the process's own (``time.process_time``), so other work on a shared machine
inflates them less than wall time; both are printed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_PRICES = next(
    (
        parent / "shared" / "data" / "prices"
        for parent in Path(__file__).resolve().parents[2:4]
        if (parent / "shared" / "data" / "prices").is_dir()
    ),
    Path(__file__).resolve().parents[2] / "shared" / "data" / "prices",
)
WATCHLIST = 1000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", type=Path, default=DEFAULT_PRICES)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--rows", type=int, default=2520)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--per-symbol", help="a real symbol to time one scheduled retrain of")
    parser.add_argument("--warm-epochs", type=int, default=3)
    parser.add_argument(
        "--global-epochs", type=float, default=10.0, help="epochs a cold global fit runs"
    )
    parser.add_argument(
        "--as-served",
        action="store_true",
        help=(
            "time one global fit as the retrain_global job configures it (its ensemble, "
            "early stopping, sampled epochs, threads) instead of --epochs full passes"
        ),
    )
    parser.add_argument("--out", type=Path)
    return parser.parse_args()


def synthetic_watchlist(prices: Path, count: int, rows: int, seed: int = 0) -> dict[str, Any]:
    """``count`` symbols of ``rows`` bars: 20-day blocks of real (return, range, volume) rows."""
    from forecasting.bars import read_bars_csv

    rng = np.random.default_rng(seed)
    sources = []
    for path in sorted(prices.glob("*.csv")):
        bars = read_bars_csv(str(path))
        close = bars["close"].to_numpy(dtype=np.float64)
        sources.append(
            np.column_stack(
                [
                    np.diff(np.log(close)),
                    ((bars["high"] - bars["low"]) / bars["close"]).to_numpy()[1:],
                    bars["volume"].to_numpy(dtype=np.float64)[1:],
                ]
            )
        )
    dates = pd.bdate_range("2015-01-02", periods=rows)
    out = {}
    for k in range(count):
        source = sources[k % len(sources)]
        starts = rng.integers(0, len(source) - 20, size=rows // 20 + 1)
        picked = np.concatenate([source[s : s + 20] for s in starts])[:rows]
        close = 50.0 * np.exp(np.cumsum(picked[:, 0]))
        half = picked[:, 1] * close / 2.0
        out[f"SYN{k:04d}"] = pd.DataFrame(
            {
                "date": dates,
                "open": close,
                "high": close + half,
                "low": close - half,
                "close": close,
                "volume": picked[:, 2],
            }
        )
    return out


def time_served_fit(args: argparse.Namespace) -> dict[str, Any]:
    """One global fit with the job's own settings (``scheduler.global_retrain.global_configs``
    over the worker's defaults): wall and CPU seconds from the bars to the fitted predictors."""
    import lightning  # noqa: F401  (imported before the clock starts: a one-off cost)

    import forecasting.model  # noqa: F401
    from db.contracts import RetrainGlobalParams
    from forecasting.bars import conform_bars
    from forecasting.global_model import GlobalForecaster
    from scheduler.config import TrainingDefaults
    from scheduler.global_retrain import global_configs

    raw = synthetic_watchlist(args.prices, args.symbols, args.rows)
    watchlist = {s: conform_bars(b) for s, b in raw.items()}
    model_config, train, _ = global_configs(RetrainGlobalParams(), TrainingDefaults())
    cpu, wall = time.process_time(), time.perf_counter()
    model = GlobalForecaster(model_config, train).fit(watchlist)
    total_cpu, total_wall = time.process_time() - cpu, time.perf_counter() - wall
    training = model.training
    return {
        "symbols": args.symbols,
        "train_windows": training["train_windows"],
        "val_windows": training["val_windows"],
        "members": training["members"],
        "max_epochs": train.epochs,
        "windows_per_epoch": train.windows_per_epoch,
        "epochs_run_first_member": training["epochs_run"],
        "stopped_early_first_member": training["stopped_early"],
        "best_val_loss_first_member": training["best_val_loss"],
        "train_wall_seconds": training["seconds"],
        "train_cpu_seconds": training["cpu_seconds"],
        "total_wall_seconds": round(total_wall, 1),
        "total_cpu_seconds": round(total_cpu, 1),
        "total_wall_minutes": round(total_wall / 60.0, 1),
    }


def time_global(args: argparse.Namespace) -> dict[str, Any]:
    import lightning  # noqa: F401  (imported before the clock starts: a one-off cost)

    import forecasting.model  # noqa: F401
    from forecasting.bars import conform_bars
    from forecasting.config import ModelConfig, TrainConfig
    from forecasting.global_model import GlobalForecaster

    raw = synthetic_watchlist(args.prices, args.symbols, args.rows)
    watchlist = {s: conform_bars(b) for s, b in raw.items()}
    train = TrainConfig(
        epochs=args.epochs,
        patience=args.epochs,
        batch_size=args.batch_size,
        ensemble=1,
        accelerator="cpu",
        num_threads=args.threads,
    )
    cpu, wall = time.process_time(), time.perf_counter()
    model = GlobalForecaster(ModelConfig(), train).fit(watchlist)
    total_cpu, total_wall = time.process_time() - cpu, time.perf_counter() - wall
    training = model.training
    per_epoch = training["cpu_seconds"] / training["epochs_run"]
    scale = WATCHLIST / args.symbols
    return {
        "symbols": args.symbols,
        "train_windows": training["train_windows"],
        "val_windows": training["val_windows"],
        "epochs": training["epochs_run"],
        "batch_size": args.batch_size,
        "threads": args.threads,
        "fit_cpu_seconds": training["cpu_seconds"],
        "fit_wall_seconds": training["seconds"],
        "prepare_cpu_seconds": round(total_cpu - training["cpu_seconds"], 1),
        "prepare_wall_seconds": round(total_wall - training["seconds"], 1),
        "cpu_seconds_per_epoch": round(per_epoch, 2),
        "cpu_seconds_per_epoch_1000": round(per_epoch * scale, 1),
        "prepare_cpu_seconds_1000": round((total_cpu - training["cpu_seconds"]) * scale, 1),
        "extrapolated": args.symbols != WATCHLIST,
    }


def time_per_symbol(args: argparse.Namespace) -> dict[str, Any]:
    """One scheduled retrain of a real symbol with the defaults, cold then warm started."""
    from forecasting.bars import read_bars_csv
    from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
    from forecasting.training import ChallengerOptions, train_challenger

    bars = read_bars_csv(str(args.prices / f"{args.per_symbol}.csv"))
    settings: dict[str, Any] = {
        "symbol": args.per_symbol,
        "model_config": ModelConfig(),
        "train_config": TrainConfig(accelerator="cpu", num_threads=args.threads),
        "backtest_config": BacktestConfig(),
        "policy": "evidence",
        "tracking_uri": None,
    }
    cpu = time.process_time()
    cold = train_challenger(bars=bars.iloc[:-5], champion=None, **settings)
    cold_cpu = time.process_time() - cpu
    cpu = time.process_time()
    warm = train_challenger(
        bars=bars,
        champion=cold.artifact,
        options=ChallengerOptions(warm_start_epochs=args.warm_epochs),
        **settings,
    )
    warm_cpu = time.process_time() - cpu

    def figures(outcome: Any, seconds: float) -> dict[str, Any]:
        return {
            "cpu_seconds": round(seconds, 1),
            "fold_epochs": [f["lstm_epochs"] for f in outcome.backtest["folds"]],
            "final_epochs": outcome.artifact.metadata["training"]["epochs_run"],
            "lstm_mase": outcome.metrics.get("lstm_mase"),
            "served": outcome.decision.selected,
        }

    return {
        "symbol": args.per_symbol,
        "cold": figures(cold, cold_cpu),
        "warm": figures(warm, warm_cpu),
    }


def budget(
    glob: dict[str, Any], per_symbol: dict[str, Any] | None, args: argparse.Namespace
) -> dict[str, Any]:
    """Weekly CPU-hours for 1,000 symbols (one retrain each a week)."""
    from forecasting.config import BacktestConfig

    folds = BacktestConfig().folds
    epoch = glob["cpu_seconds_per_epoch_1000"]
    prepare = glob["prepare_cpu_seconds_1000"]
    cold_fit = args.global_epochs * epoch + prepare
    warm_fit = args.warm_epochs * epoch + prepare
    out: dict[str, Any] = {
        "global_cold_cpu_hours": round((folds + 1) * cold_fit / 3600.0, 2),
        "global_warm_cpu_hours": round((cold_fit + folds * warm_fit) / 3600.0, 2),
        "global_fit_cold_wall_minutes_1_thread": round(cold_fit / 60.0, 1),
        "assumed_global_epochs": args.global_epochs,
        "folds": folds,
    }
    if per_symbol is not None:
        out["per_symbol_cold_cpu_hours"] = round(
            per_symbol["cold"]["cpu_seconds"] * WATCHLIST / 3600.0, 1
        )
        out["per_symbol_warm_cpu_hours"] = round(
            per_symbol["warm"]["cpu_seconds"] * WATCHLIST / 3600.0, 1
        )
    return out


def main() -> None:
    args = parse_args()
    if args.as_served:
        served = time_served_fit(args)
        print(json.dumps({"global_fit_as_served": served}, indent=1), flush=True)
        if args.out:
            args.out.write_text(json.dumps(served, indent=1) + "\n")
        return
    glob = time_global(args)
    print(json.dumps({"global": glob}, indent=1), flush=True)
    per_symbol = time_per_symbol(args) if args.per_symbol else None
    if per_symbol is not None:
        print(json.dumps({"per_symbol": per_symbol}, indent=1), flush=True)
    result = {"global": glob, "per_symbol": per_symbol, "budget": budget(glob, per_symbol, args)}
    print(json.dumps({"budget": result["budget"]}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
