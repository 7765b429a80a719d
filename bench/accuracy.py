"""Walk-forward accuracy of the LSTM against the naive and drift forecasts, for every symbol of a
CSV price directory (default ``../shared/data/prices``), with the service's default configuration.

    .venv/bin/python bench/accuracy.py [PRICES_DIR] [--folds 3] [--test-size 126] [--epochs 30]

Prints one row per symbol and model (MASE, Theil's U2, directional accuracy, 80%/95% coverage,
the Diebold-Mariano p-values of the LSTM against naive) and writes the table to
``bench/results/accuracy.json`` and ``accuracy.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from forecasting.backtest import walk_forward
from forecasting.bars import read_bars_csv
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig

DEFAULT_PRICES = Path(__file__).resolve().parents[2] / "shared" / "data" / "prices"
RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("lstm", "naive", "drift")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prices", nargs="?", type=Path, default=DEFAULT_PRICES)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--test-size", type=int, default=126)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--symbols", nargs="*", help="only these symbols (default: every CSV)")
    return parser.parse_args()


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    model_config = ModelConfig()
    train_config = TrainConfig(epochs=args.epochs)
    backtest_config = BacktestConfig(folds=args.folds, test_size=args.test_size)
    files = sorted(args.prices.glob("*.csv"))
    if args.symbols:
        wanted = {s.upper() for s in args.symbols}
        files = [f for f in files if f.stem.upper() in wanted]
    rows: list[dict[str, Any]] = []
    header = (
        f"{'symbol':<7}{'model':<7}{'MASE':>8}{'U2':>8}{'DirAcc':>8}{'cov80':>8}{'cov95':>8}"
        f"{'DM p':>8}{'p worse':>9}{'epochs':>8}{'secs':>7}"
    )
    print(header, flush=True)
    for path in files:
        started = time.perf_counter()
        report = walk_forward(
            read_bars_csv(str(path)),
            model_config=model_config,
            train_config=train_config,
            backtest_config=backtest_config,
        ).to_dict()
        seconds = time.perf_counter() - started
        epochs = "/".join(str(f["lstm_epochs"]) for f in report["folds"])
        for model in MODELS:
            scores = report[model]
            is_lstm = model == "lstm"
            row = {
                "symbol": path.stem,
                "model": model,
                "mase": scores["mase"],
                "theil_u2": scores["theil_u2"],
                "directional_accuracy": scores["directional_accuracy"],
                "coverage_80": scores["coverage_80"],
                "coverage_95": scores["coverage_95"],
                "dm_p_value": report["dm"]["p_value"] if is_lstm else None,
                "dm_p_value_lstm_worse": report["dm"]["p_value_lstm_worse"] if is_lstm else None,
                "lstm_epochs": epochs if is_lstm else None,
                "seconds": round(seconds, 1) if is_lstm else None,
            }
            rows.append(row)
            print(
                f"{row['symbol']:<7}{model:<7}{fmt(row['mase']):>8}{fmt(row['theil_u2']):>8}"
                f"{fmt(row['directional_accuracy']):>8}{fmt(row['coverage_80']):>8}"
                f"{fmt(row['coverage_95']):>8}{fmt(row['dm_p_value']):>8}"
                f"{fmt(row['dm_p_value_lstm_worse']):>9}{(epochs if is_lstm else ''):>8}"
                f"{(fmt(seconds, 0) if is_lstm else ''):>7}",
                flush=True,
            )
    summary = _verdict(rows)
    print(summary)
    RESULTS.mkdir(exist_ok=True)
    config = {
        "model": model_config.to_dict(),
        "train": train_config.to_dict(),
        "backtest": backtest_config.to_dict(),
        "prices": str(args.prices),
    }
    (RESULTS / "accuracy.json").write_text(
        json.dumps({"config": config, "rows": rows, "verdict": summary}, indent=2) + "\n"
    )
    (RESULTS / "accuracy.md").write_text(_markdown(rows) + "\n\n" + summary + "\n")


def _verdict(rows: list[dict[str, Any]]) -> str:
    by_symbol: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_symbol.setdefault(row["symbol"], {})[row["model"]] = row
    beats = [s for s, m in by_symbol.items() if m["lstm"]["mase"] < m["naive"]["mase"]]
    worse = [s for s, m in by_symbol.items() if (m["lstm"]["dm_p_value_lstm_worse"] or 1.0) < 0.05]
    better = [
        s
        for s, m in by_symbol.items()
        if m["lstm"]["dm_p_value"] < 0.05 and m["lstm"]["mase"] < m["naive"]["mase"]
    ]
    return (
        f"LSTM MASE below naive on {len(beats)}/{len(by_symbol)} symbols ({', '.join(beats) or '-'}); "
        f"significantly better than naive (DM, 5%) on {len(better)} ({', '.join(better) or '-'}); "
        f"significantly worse on {len(worse)} ({', '.join(worse) or '-'})."
    )


def _markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| symbol | model | MASE | Theil's U2 | dir. acc. | cov. 80% | cov. 95% | DM p | DM p (LSTM worse) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['symbol']} | {row['model']} | {fmt(row['mase'])} | {fmt(row['theil_u2'])} | "
            f"{fmt(row['directional_accuracy'])} | {fmt(row['coverage_80'])} | "
            f"{fmt(row['coverage_95'])} | {fmt(row['dm_p_value'])} | "
            f"{fmt(row['dm_p_value_lstm_worse'])} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
