"""Choose how far to shrink the EWMA volatility towards its long run, on windows that the README's
table does not report: the eight symbols' last 3 x 126 origins up to 2019-12-31, and the bundled
GOOG and INTC sample (up to 2020). No LSTM: naive point forecasts, the backtest's own folds,
calibration split and ACI (W = 250, gamma = 0.005).

    .venv/bin/python bench/scale_tuning.py [--weights 0.25 0.5 0.75]

Prints, per scale model, the coverage of the 80% and 95% intervals overall, in the most volatile
and in the calmest third of origins (ex-ante EWMA sigma), and the mean interval scores
(log return x 100), averaged over the series of each set.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from forecasting.bars import read_bars_csv
from forecasting.candidates import adaptive_block
from forecasting.conformal import TRACKED_LEVELS
from forecasting.scores import interval_scores, terciles
from forecasting.sources import make_source
from forecasting.volatility import EwmaScale, ScaleModel, ShrunkEwmaScale, fit_garch_t
from forecasting.windowing import log_returns_ahead, split_origins

HORIZON, FOLDS, SIZE, HISTORY = 5, 3, 126, 2520
EIGHT = ("AAPL", "DIS", "JPM", "KO", "MSFT", "NVDA", "SPY", "XOM")
PRICES = next(
    (
        parent / "shared" / "data" / "prices"
        for parent in Path(__file__).resolve().parents[2:4]
        if (parent / "shared" / "data" / "prices").is_dir()
    ),
    Path("../shared/data/prices"),
)


def closes_of(symbol: str) -> np.ndarray[Any, Any]:
    if symbol in ("GOOG", "INTC"):
        bars = make_source("sample").fetch(symbol, None, None)
    else:
        bars = read_bars_csv(str(PRICES / f"{symbol}.csv"))
        bars = bars[bars["date"] <= "2019-12-31"]
    return bars["close"].to_numpy(dtype=np.float64)


def evaluate(
    closes: np.ndarray[Any, Any], make: Callable[[np.ndarray[Any, Any]], ScaleModel]
) -> dict[str, float]:
    """The backtest's folds for a naive point forecast with the scale model ``make`` fits."""
    first = closes.size - HORIZON - FOLDS * SIZE
    actual, halves, ewma = [], [], []
    for k in range(FOLDS):
        block = np.arange(first + k * SIZE, first + (k + 1) * SIZE)
        start = max(0, int(block[0]) + 1 - HISTORY)
        split = split_origins(
            int(block[0]) + 1 - start, lookback=60, horizon=HORIZON, val_fraction=0.15,
            cal_fraction=0.15,
        )  # fmt: skip
        calibration = split.calibration + start
        scale = make(closes[start : int(calibration[0]) + 1])
        parts = []
        for rows in (calibration, block):
            y = log_returns_ahead(closes, rows, HORIZON)
            parts.append((y, np.zeros_like(y), scale.sigma(closes, rows, HORIZON)))
        half, _ = adaptive_block(calibration=parts[0], test=parts[1], window=250, gamma=0.005)
        actual.append(parts[1][0])
        halves.append(half)
        ewma.append(EwmaScale().sigma(closes, block, 1)[:, 0])
    y, half = np.vstack(actual), np.vstack(halves)
    third = terciles(np.concatenate(ewma))
    out = {}
    for level in (0.8, 0.95):
        width = half[:, :, list(TRACKED_LEVELS).index(level)]
        covered = np.abs(y) <= width
        key = str(round(level * 100))
        out[f"cov{key}"] = float(covered.mean())
        out[f"high{key}"] = float(covered[third == 2].mean())
        out[f"low{key}"] = float(covered[third == 0].mean())
        out[f"IS{key}"] = float(np.mean(interval_scores(100 * y, -100 * width, 100 * width, level)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    args = parser.parse_args()
    models: dict[str, Callable[[np.ndarray[Any, Any]], ScaleModel]] = {
        "ewma": lambda closes: EwmaScale(),
        "garch_t": fit_garch_t,
    }
    for weight in args.weights:
        models[f"ewma_shrunk w={weight}"] = lambda closes, w=weight: ShrunkEwmaScale(
            long_run_variance=float(np.var(np.diff(np.log(closes)))), weight=w
        )
    for label, symbols in (("eight symbols, up to 2019", EIGHT), ("GOOG, INTC", ("GOOG", "INTC"))):
        print(label)
        series = [closes_of(s) for s in symbols]
        for name, make in models.items():
            results = [evaluate(c, make) for c in series]
            mean = {k: float(np.mean([r[k] for r in results])) for k in results[0]}
            print(
                f"  {name:<20} 80%: cov {mean['cov80']:.3f} high {mean['high80']:.3f} "
                f"low {mean['low80']:.3f} IS {mean['IS80']:.2f} | 95%: cov {mean['cov95']:.3f} "
                f"high {mean['high95']:.3f} low {mean['low95']:.3f} IS {mean['IS95']:.2f}"
            )


if __name__ == "__main__":
    main()
