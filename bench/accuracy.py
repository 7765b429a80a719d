"""Walk-forward accuracy and calibration of every candidate, and of what the gate serves, for every
symbol of a CSV price directory (default ``../shared/data/prices``), with the service's default
configuration.

    .venv/bin/python bench/accuracy.py [PRICES_DIR] [--folds 3] [--test-size 126] [--epochs 30]
        [--seeds 3] [--symbols SPY KO] [--out bench/results] [--resume] [--end 2022-12-30]
        [--global] [--warm-epochs N]

Per symbol: the served candidate and why, its pooled coverage at 80%/95% (all origins and steps),
its coverage in the most volatile tercile of origins (ex-ante EWMA sigma), its 95% interval score
against today's split-conformal LSTM intervals (``lstm+fixed``), naive ± z * sigma60 * sqrt(h) and a
parametric GARCH(1,1)-t interval, CRPS, MASE on log returns, the one-sided DM p-values of the LSTM
against naive and drift, and the spread of the LSTM's figures over its ``--seeds`` ensemble
members. Then the issue's targets, each marked met or missed. Each symbol's row is written as soon
as it is done (``--resume`` skips the symbols already written), then the table to
``accuracy.json`` and ``accuracy.md``.

``--global`` adds the global LSTM (one network trained on every symbol of the run, one per fold
cutoff, each on every symbol's bars before that fold: :class:`forecasting.global_model.GlobalFolds`)
as the candidate ``glstm``, and a table of its MASE, the per-symbol LSTM's and naive's, and its
one-sided DM p-values. ``--warm-epochs N`` warm starts every fold after the first from the previous
fold's networks with at most N epochs (per-symbol and global), to see what that changes.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from forecasting.backtest import BacktestReport, GlobalCandidate, walk_forward
from forecasting.bars import read_bars_csv
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.global_model import GlobalFolds
from forecasting.report import INTERVAL_FIGURES

#: ``../shared/data/prices`` next to the checkout (or next to its worktree folder).
DEFAULT_PRICES = next(
    (
        parent / "shared" / "data" / "prices"
        for parent in Path(__file__).resolve().parents[2:4]
        if (parent / "shared" / "data" / "prices").is_dir()
    ),
    Path(__file__).resolve().parents[2] / "shared" / "data" / "prices",
)
RESULTS = Path(__file__).resolve().parent / "results"
REFERENCES = ("lstm+fixed", "naive+sigma60", "naive+garch_t_parametric")
FIGURES = INTERVAL_FIGURES


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prices", nargs="?", type=Path, default=DEFAULT_PRICES)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--test-size", type=int, default=126)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3, help="LSTM ensemble members (seeds)")
    parser.add_argument("--symbols", nargs="*", help="only these symbols (default: every CSV)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--resume", action="store_true", help="keep rows already written")
    parser.add_argument(
        "--end",
        type=date.fromisoformat,
        help="use only the bars up to this date (YYYY-MM-DD): the test windows then end there, "
        "e.g. to check the method on a period none of its choices were made on",
    )
    parser.add_argument("--global", dest="with_global", action="store_true")
    parser.add_argument("--warm-epochs", type=int, help="warm start folds after the first")
    return parser.parse_args()


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pick(figures: dict[str, Any], keys: tuple[str, ...] = FIGURES) -> dict[str, Any]:
    return {key: figures.get(key) for key in keys}


def symbol_row(symbol: str, report: BacktestReport, seconds: float) -> dict[str, Any]:
    """The figures of one symbol that the table and the targets need."""
    payload = report.to_dict()
    decision = payload["decision"]
    selected = payload["selected"]
    served = report.candidate(selected) if selected != "champion" else {}
    lstm = next(c for n, c in payload["candidates"].items() if n.startswith("lstm+"))
    tercile = served.get("coverage_by_tercile", {})
    return {
        "symbol": symbol,
        "selected": selected,
        "reason": decision["reason"],
        "recalibrated": decision["recalibrated"],
        "lstm_eligible": decision["lstm_eligible"],
        "lstm_scale": decision["lstm_scale"],
        "served": {
            **_pick(served),
            "coverage_high_80": tercile.get("80", {}).get("high"),
            "coverage_high_95": tercile.get("95", {}).get("high"),
            "coverage_by_fold": served.get("coverage_by_fold"),
            "dm_squared_error_vs_naive": served.get("dm", {}).get("squared_error_vs_naive"),
            "dm_interval_score_vs_naive_sigma60": served.get("dm", {}).get(
                "interval_score_vs_naive_sigma60"
            ),
        },
        "candidates": {name: _pick(c) for name, c in payload["candidates"].items()},
        "references": {name: _pick(c) for name, c in payload["references"].items()},
        "points": {
            name: _pick(p, ("mase", "theil_u2", "directional_accuracy", "mse_log_pct"))
            for name, p in payload["points"].items()
        },
        "dm_lstm_vs_naive": lstm["dm"]["squared_error_vs_naive"],
        "dm_lstm_vs_drift": lstm["dm"]["squared_error_vs_drift"],
        "glstm": _global_row(payload),
        "seeds": payload["seeds"],
        "windows": payload["windows"],
        "lstm_epochs": [f["lstm_epochs"] for f in payload["folds"]],
        "garch": [f["garch"] for f in payload["folds"]],
        "seconds": round(seconds, 1),
    }


def _global_row(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The global candidate's point figures, best interval candidate and DM p-values."""
    if "glstm" not in payload["points"]:
        return None
    names = [n for n in payload["candidates"] if n.startswith("glstm+")]
    best = min(names, key=lambda n: payload["candidates"][n]["interval_score_95"])
    dm = payload["candidates"][best]["dm"]
    return {
        "mase": payload["points"]["glstm"]["mase"],
        "best_candidate": best,
        **{f"{best.partition('+')[0]}_{k}": payload["candidates"][best][k] for k in FIGURES},
        "dm_vs_naive": dm["squared_error_vs_naive"],
        "dm_vs_drift": dm["squared_error_vs_drift"],
        "eligible": payload["decision"].get("global_eligible"),
    }


def read_bars(path: Path, end: date | None) -> pd.DataFrame:
    bars = read_bars_csv(str(path))
    if end is not None:
        bars = bars[bars["date"] <= pd.Timestamp(end)].reset_index(drop=True)
    return bars


def run_symbol(
    path: Path,
    configs: tuple[ModelConfig, TrainConfig, BacktestConfig],
    end: date | None,
    extras: tuple[GlobalFolds | None, int | None] = (None, None),
) -> dict[str, Any]:
    model_config, train_config, backtest_config = configs
    folds, warm_epochs = extras
    started = time.perf_counter()
    report = walk_forward(
        read_bars(path, end),
        model_config=model_config,
        train_config=train_config,
        backtest_config=backtest_config,
        global_candidate=None if folds is None else GlobalCandidate(symbol=path.stem, folds=folds),
        warm_epochs=warm_epochs,
    )
    return symbol_row(path.stem, report, time.perf_counter() - started)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    configs = (
        ModelConfig(),
        TrainConfig(epochs=args.epochs, ensemble=args.seeds),
        BacktestConfig(folds=args.folds, test_size=args.test_size),
    )
    files = sorted(args.prices.glob("*.csv"))
    if args.symbols:
        wanted = {s.upper() for s in args.symbols}
        files = [f for f in files if f.stem.upper() in wanted]
    if not files:
        raise SystemExit(f"no SYMBOL.csv files to backtest in {args.prices}")
    rows_dir = args.out / "accuracy_rows"
    rows_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    folds = None
    if args.with_global:
        # Every symbol of the run, up to one common last day (so they share the fold cutoffs and
        # so the global networks); each fold's network sees only bars before it.
        # The watchlist is every CSV of the directory, even with --symbols.
        everything = sorted(args.prices.glob("*.csv"))
        ends = [read_bars(f, args.end)["date"].iloc[-1] for f in everything]
        args.end = pd.Timestamp(min(ends)).date()
        watchlist = {f.stem: read_bars(f, args.end) for f in everything}
        folds = GlobalFolds(watchlist, configs[0], configs[1], warm_epochs=args.warm_epochs)
    for path in files:
        target = rows_dir / f"{path.stem}.json"
        if args.resume and target.exists():
            rows.append(json.loads(target.read_text()))
            continue
        row = run_symbol(path, configs, args.end, (folds, args.warm_epochs))
        target.write_text(json.dumps(row, indent=1, allow_nan=False) + "\n")
        rows.append(row)
        print(_line(row), flush=True)
    checks = targets(rows)
    summary = "\n".join(f"- {'met' if ok else 'MISSED'}: {text}" for ok, text in checks)
    print(summary)
    config = {
        "model": configs[0].to_dict(),
        "train": configs[1].to_dict(),
        "backtest": configs[2].to_dict(),
        "prices": str(args.prices),
        "end": args.end.isoformat() if args.end else None,
    }
    (args.out / "accuracy.json").write_text(
        json.dumps({"config": config, "rows": rows, "targets": checks}, indent=1) + "\n"
    )
    (args.out / "accuracy.md").write_text(
        markdown(rows) + "\n\n" + global_table(rows) + "\n\n" + summary + "\n"
    )
    if folds is not None:
        print(global_table(rows))
        print(f"global fits: {len(folds.models)}, CPU seconds {folds.cpu_seconds():.0f}")


def _line(row: dict[str, Any]) -> str:
    served = row["served"]
    return (
        f"{row['symbol']:<6} serves {row['selected']:<16} cov80 {fmt(served['coverage_80'])} "
        f"cov95 {fmt(served['coverage_95'])} high-vol {fmt(served['coverage_high_80'])}/"
        f"{fmt(served['coverage_high_95'])} IS95 {fmt(served['interval_score_95'])} vs "
        f"split-conformal {fmt(row['references']['lstm+fixed']['interval_score_95'])}, "
        f"sigma60 {fmt(row['references']['naive+sigma60']['interval_score_95'])} "
        f"({row['seconds']:.0f}s)"
    )


def _pooled(rows: list[dict[str, Any]], key: str) -> float:
    """Every symbol has the same number of origins (and terciles of equal size), so the pooled
    share is the mean of the symbols' shares."""
    values = [row["served"][key] for row in rows if row["served"].get(key) is not None]
    return sum(values) / len(values) if values else float("nan")


def targets(rows: list[dict[str, Any]]) -> list[tuple[bool, str]]:
    """The issue's targets, each with the measured figure."""
    checks: list[tuple[bool, str]] = []
    for level, key in ((0.8, "coverage_80"), (0.95, "coverage_95")):
        pooled = _pooled(rows, key)
        checks.append(
            (abs(pooled - level) <= 0.02, f"pooled {key} {pooled:.3f} within ±0.02 of {level}")
        )
        outside = [r["symbol"] for r in rows if abs(r["served"][key] - level) > 0.06]
        checks.append((not outside, f"every symbol's {key} within ±0.06 (outside: {outside})"))
        high = _pooled(rows, f"coverage_high_{key[-2:]}")
        checks.append(
            (abs(high - level) <= 0.05, f"most volatile tercile {key} {high:.3f} within ±0.05")
        )
    for reference, needed in (("lstm+fixed", 7), ("naive+sigma60", 5)):
        lower = [
            r["symbol"]
            for r in rows
            if r["served"]["interval_score_95"] < r["references"][reference]["interval_score_95"]
        ]
        checks.append(
            (
                len(lower) >= needed * len(rows) / 8,
                f"95% interval score below {reference} on {len(lower)}/{len(rows)} "
                f"(needs {needed}/8): {lower}",
            )
        )
    worse = [
        r["symbol"]
        for r in rows
        if (r["served"]["dm_squared_error_vs_naive"] or {}).get("p_one_sided_worse", 1.0) < 0.05
    ]
    checks.append((not worse, f"no served model significantly worse than naive (worse: {worse})"))
    return checks


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| symbol | served | cov. 80% / 95% | high-vol tercile 80% / 95% | IS95 served / "
        "split-conformal / naive±sigma60 / GARCH-t | CRPS | MASE lstm / naive / drift | "
        "DM p LSTM better vs naive / drift | Kupiec min p 80% / 95% |",
        "|---|---|---|---|---|---:|---|---|---|",
    ]
    for r in rows:
        s, refs, pts = r["served"], r["references"], r["points"]
        lines.append(
            f"| {r['symbol']} | {r['selected']}{' (recal.)' if r['recalibrated'] else ''} | "
            f"{fmt(s['coverage_80'])} / {fmt(s['coverage_95'])} | "
            f"{fmt(s['coverage_high_80'])} / {fmt(s['coverage_high_95'])} | "
            f"{fmt(s['interval_score_95'], 2)} / {fmt(refs['lstm+fixed']['interval_score_95'], 2)}"
            f" / {fmt(refs['naive+sigma60']['interval_score_95'], 2)} / "
            f"{fmt(refs['naive+garch_t_parametric']['interval_score_95'], 2)} | "
            f"{fmt(s['crps'])} | {fmt(pts['lstm']['mase'])} / {fmt(pts['naive']['mase'])} / "
            f"{fmt(pts['drift']['mase'])} | {fmt(r['dm_lstm_vs_naive']['p_one_sided_better'])} / "
            f"{fmt(r['dm_lstm_vs_drift']['p_one_sided_better'])} | "
            f"{fmt(s['kupiec_min_p_80'])} / {fmt(s['kupiec_min_p_95'])} |"
        )
    lines += ["", fixed_table(rows), "", seed_table(rows)]
    return "\n".join(lines)


def fixed_table(rows: list[dict[str, Any]]) -> str:
    """Every candidate served everywhere, without the gate's per-symbol choice: the served
    column's figures are chosen on the same windows they are reported on, these are not."""
    lines = [
        "| candidate, every symbol | cov. 80% / 95% (pooled) | IS95 below split-conformal / "
        "naive±sigma60 | mean IS95 |",
        "|---|---|---|---:|",
    ]
    names = list(rows[0]["candidates"]) + list(rows[0]["references"])
    for name in names:
        figures = [r["candidates"].get(name) or r["references"][name] for r in rows]
        below = [
            sum(
                f["interval_score_95"] < r["references"][ref]["interval_score_95"]
                for f, r in zip(figures, rows, strict=True)
            )
            for ref in ("lstm+fixed", "naive+sigma60")
        ]
        n = len(rows)
        lines.append(
            f"| {name} | {fmt(sum(f['coverage_80'] for f in figures) / n)} / "
            f"{fmt(sum(f['coverage_95'] for f in figures) / n)} | {below[0]}/{n} / {below[1]}/{n} | "
            f"{fmt(sum(f['interval_score_95'] for f in figures) / n, 2)} |"
        )
    return "\n".join(lines)


def global_table(rows: list[dict[str, Any]]) -> str:
    """The global LSTM beside the per-symbol LSTM and naive (empty without ``--global``)."""
    lines = [
        "| symbol | MASE glstm / lstm / naive | glstm best intervals: cov. 80% / 95%, IS95 | "
        "DM p glstm better vs naive / drift | DM p lstm better vs naive / drift |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        g = r.get("glstm")
        if not g:
            continue
        pts = r["points"]
        lines.append(
            f"| {r['symbol']} | {fmt(g['mase'])} / {fmt(pts['lstm']['mase'])} / "
            f"{fmt(pts['naive']['mase'])} | {g['best_candidate']}: {fmt(g['glstm_coverage_80'])}"
            f" / {fmt(g['glstm_coverage_95'])}, {fmt(g['glstm_interval_score_95'], 2)} | "
            f"{fmt(g['dm_vs_naive']['p_one_sided_better'])} / "
            f"{fmt(g['dm_vs_drift']['p_one_sided_better'])} | "
            f"{fmt(r['dm_lstm_vs_naive']['p_one_sided_better'])} / "
            f"{fmt(r['dm_lstm_vs_drift']['p_one_sided_better'])} |"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


def seed_table(rows: list[dict[str, Any]]) -> str:
    """How much the seed moves the LSTM: each member's MASE and U2, and the ensemble's."""
    lines = [
        "| symbol | LSTM MASE per seed (ensemble) | U2 per seed (ensemble) | "
        "DM p LSTM better vs naive per seed |",
        "|---|---|---|---|",
    ]
    for r in rows:
        seeds = r.get("seeds")
        if not seeds:
            continue
        members = seeds["per_member"]
        lines.append(
            f"| {r['symbol']} | {', '.join(fmt(m['mase']) for m in members)} "
            f"({fmt(r['points']['lstm']['mase'])}) | "
            f"{', '.join(fmt(m['theil_u2']) for m in members)} "
            f"({fmt(r['points']['lstm']['theil_u2'])}) | "
            f"{', '.join(fmt(m['dm_vs_naive_p_one_sided_better']) for m in members)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
