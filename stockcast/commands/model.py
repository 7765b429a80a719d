"""``stockcast train`` and ``stockcast backtest``: train a symbol's LSTM (MLflow run, registry
version, promotion gate) or just measure it against the naive and drift forecasts. Both work
offline with ``--source csv:DIR`` or ``--source sample``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stockcast.cli import EXIT_USAGE, CommandError
from stockcast.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from forecasting.backtest import BacktestReport
    from forecasting.config import BacktestConfig, ModelConfig, TrainConfig

#: Rows of the comparison table: (metric key, label).
TABLE_METRICS = (
    ("mase", "MASE"),
    ("theil_u2", "Theil's U2"),
    ("directional_accuracy", "directional accuracy"),
    ("coverage_80", "80% interval coverage"),
    ("coverage_95", "95% interval coverage"),
    ("rmse", "RMSE"),
    ("mae", "MAE"),
    ("mape", "MAPE %"),
    ("r2", "R² (prices)"),
)


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = subparsers.add_parser(
        "train",
        help="backtest, train and register a symbol's LSTM; promote it if it passes the gate",
        description=(
            "Walk-forward backtest of the LSTM against the naive and drift forecasts (and the "
            "current champion), then the final fit, logged to MLflow and registered as "
            "stockcast-SYMBOL. The champion alias moves only if the promotion gate passes."
        ),
    )
    _add_data_options(train)
    _add_model_options(train)
    train.add_argument("--batch-size", type=int, help="training batch size (default 64)")
    train.add_argument(
        "--policy",
        help="promotion gate: always, beat_champion or not_worse_than_naive "
        "(default STOCKCAST_PROMOTION_POLICY)",
    )
    train.add_argument(
        "--output", type=Path, help="also write the model files and backtest.json to this directory"
    )
    train.set_defaults(handler=run_train)

    backtest = subparsers.add_parser(
        "backtest",
        help="walk-forward backtest of the LSTM vs naive and drift (prints a table or JSON)",
    )
    _add_data_options(backtest)
    _add_model_options(backtest)
    backtest.add_argument(
        "--json", action="store_true", help="print the report as JSON on stdout, nothing else"
    )
    backtest.set_defaults(handler=run_backtest)


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("symbol", metavar="SYMBOL", help="ticker, e.g. SPY")
    parser.add_argument("--source", help="yfinance, csv:DIR or sample (default STOCKCAST_SOURCE)")
    parser.add_argument("--start", help="first date to use, YYYY-MM-DD")
    parser.add_argument("--end", help="last date to use, YYYY-MM-DD")
    parser.add_argument(
        "--drop-bad", action="store_true", help="drop invalid bars (reported) instead of refusing"
    )


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--epochs", type=int, help="maximum epochs (default STOCKCAST_TRAIN_EPOCHS)"
    )
    parser.add_argument("--horizon", type=int, help="trading days ahead (default 5)")
    parser.add_argument("--lookback", type=int, help="window length in trading days (default 60)")
    parser.add_argument(
        "--folds", type=int, help="backtest folds (default STOCKCAST_BACKTEST_FOLDS)"
    )
    parser.add_argument("--test-size", type=int, help="forecast origins per fold (default 126)")
    refit = parser.add_mutually_exclusive_group()
    refit.add_argument(
        "--refit",
        dest="refit",
        action="store_true",
        default=True,
        help="train a fresh model before each fold (default)",
    )
    refit.add_argument(
        "--fit-once",
        dest="refit",
        action="store_false",
        help="train once before the first fold and score every fold with it",
    )


def _parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"{option} must be a date as YYYY-MM-DD, got {value!r}", EXIT_USAGE
        ) from None


def load_bars(args: argparse.Namespace, settings: Settings) -> tuple[str, pd.DataFrame]:
    """The symbol (normalised) and its validated bars from the chosen source."""
    from forecasting.sources import (
        InvalidDateRangeError,
        NoDataError,
        SourceError,
        UnknownSymbolError,
        make_source,
        parse_source_spec,
    )
    from forecasting.symbols import InvalidSymbolError, normalize_symbol
    from forecasting.validation import InvalidBarsError

    try:
        symbol = normalize_symbol(args.symbol)
    except InvalidSymbolError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    start = _parse_day(args.start, "--start")
    end = _parse_day(args.end, "--end")
    try:
        spec = parse_source_spec(args.source) if args.source else settings.source
        bars = make_source(spec).fetch(symbol, start, end, drop_bad=args.drop_bad)
    except (ValueError, InvalidDateRangeError) as exc:
        if isinstance(exc, InvalidBarsError):
            raise CommandError(f"{symbol}: {exc}") from None
        raise CommandError(str(exc), EXIT_USAGE) from None
    except (UnknownSymbolError, NoDataError) as exc:
        raise CommandError(str(exc)) from None
    except SourceError as exc:
        raise CommandError(f"cannot fetch {symbol}: {exc}") from None
    return symbol, bars


def build_configs(
    args: argparse.Namespace, settings: Settings, *, progress_bar: bool
) -> tuple[ModelConfig, TrainConfig, BacktestConfig]:
    from forecasting.config import BacktestConfig, InvalidConfigError, ModelConfig, TrainConfig

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    try:
        model = ModelConfig(
            horizon=pick(args.horizon, settings.default_horizon),
            lookback=pick(args.lookback, settings.default_lookback),
        )
        train = TrainConfig(
            epochs=pick(args.epochs, settings.train_epochs),
            batch_size=pick(getattr(args, "batch_size", None), 64),
            progress_bar=progress_bar,
        )
        backtest = BacktestConfig(
            folds=pick(args.folds, settings.backtest_folds),
            test_size=pick(args.test_size, 126),
            refit=args.refit,
        )
    except InvalidConfigError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    return model, train, backtest


def _run_backtest(
    bars: pd.DataFrame, configs: tuple[ModelConfig, TrainConfig, BacktestConfig]
) -> BacktestReport:
    from forecasting.backtest import walk_forward
    from forecasting.windowing import InsufficientDataError

    model, train, backtest = configs
    try:
        return walk_forward(bars, model_config=model, train_config=train, backtest_config=backtest)
    except InsufficientDataError as exc:
        raise CommandError(str(exc)) from None


def format_table(symbol: str, report: dict[str, Any]) -> str:
    """The LSTM, naive and drift (and champion) side by side, one metric per line."""
    models = [m for m in ("lstm", "naive", "drift", "champion") if m in report]
    backtest = report["config"]["backtest"]
    mode = "refit per fold" if backtest["refit"] else "fit once"
    lines = [
        f"{symbol}: walk-forward backtest, {len(report['folds'])} fold(s) x "
        f"{backtest['test_size']} origins ({report['windows']} forecasts), "
        f"horizon {report['horizon']}, {mode}",
        f"{'metric':<24}" + "".join(f"{m:>12}" for m in models),
    ]
    for key, label in TABLE_METRICS:
        cells = []
        for model in models:
            value = report[model].get(key)
            cells.append(f"{'n/a':>12}" if value is None else f"{value:>12.4f}")
        lines.append(f"{label:<24}" + "".join(cells))
    dm = report["dm"]
    statistic = "inf" if dm["statistic"] is None else f"{dm['statistic']:.3f}"
    lines.append(
        f"Diebold-Mariano LSTM vs naive: statistic {statistic}, p={dm['p_value']:.4f} "
        f"(two-sided), p={dm['p_value_lstm_worse']:.4f} (LSTM worse)"
    )
    mase, naive_mase = report["lstm"]["mase"], report["naive"]["mase"]
    verdict = "lower than" if mase < naive_mase else "not lower than"
    significance = (
        "significant" if dm["p_value"] < 0.05 else "not significant"
    ) + f" at 5% (DM p={dm['p_value']:.3f})"
    lines.append(
        f"LSTM MASE {mase:.4f} is {verdict} naive's {naive_mase:.4f}; the difference is "
        f"{significance}."
    )
    return "\n".join(lines)


def run_backtest(args: argparse.Namespace, settings: Settings) -> int:
    symbol, bars = load_bars(args, settings)
    configs = build_configs(args, settings, progress_bar=not args.json and sys.stdout.isatty())
    report = _run_backtest(bars, configs).to_dict()
    if args.json:
        print(json.dumps({"symbol": symbol, **report}, allow_nan=False))
    else:
        print(format_table(symbol, report))
    return 0


def _service_database_ready(settings: Settings) -> bool:
    """Whether the service database is migrated to head (else the CLI trains for MLflow only)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from stockcast.schema import database_revision, head_revision

    try:
        return database_revision(settings.database_url) == head_revision()
    except (OperationalError, DBAPIError):
        return False


def run_train(args: argparse.Namespace, settings: Settings) -> int:
    from forecasting.promotion import UnknownPolicyError, parse_policy
    from forecasting.tracking import TrackingError, load_champion, set_champion_alias
    from forecasting.training import train_challenger
    from forecasting.windowing import InsufficientDataError
    from scheduler.models import record_training_outcome, run_with_database, service_champion

    try:
        policy = parse_policy(args.policy) if args.policy else settings.promotion_policy
    except UnknownPolicyError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    symbol, bars = load_bars(args, settings)
    model, train, backtest = build_configs(args, settings, progress_bar=sys.stdout.isatty())
    tracking_uri = settings.mlflow_tracking_uri
    # With a migrated service database, the CLI judges against the serving champion and records
    # the model there exactly as the scheduler's retrain job does (scheduler.models).
    service = _service_database_ready(settings)
    try:
        if service:
            current = run_with_database(
                settings.database_url, lambda sessions: service_champion(sessions, symbol)
            )
        else:
            current = load_champion(tracking_uri, symbol)
        outcome = train_challenger(
            symbol=symbol,
            bars=bars,
            model_config=model,
            train_config=train,
            backtest_config=backtest,
            policy=policy,
            champion=None if current is None else current[1],
            tracking_uri=tracking_uri,
            artifact_root=settings.mlflow_artifact_root,
        )
        if service:
            recorded = run_with_database(
                settings.database_url,
                lambda sessions: record_training_outcome(
                    sessions,
                    symbol=symbol,
                    outcome=outcome,
                    params={"model": model.to_dict(), "train": train.to_dict(), "source": "cli"},
                    tracking_uri=tracking_uri,
                ),
            )
            promoted = recorded.promoted
        else:
            promoted = outcome.decision.promote and outcome.registry_version is not None
            if promoted and outcome.registry_version is not None:
                set_champion_alias(tracking_uri, symbol, outcome.registry_version)
    except TrackingError as exc:
        raise CommandError(str(exc)) from None
    except InsufficientDataError as exc:
        raise CommandError(str(exc)) from None
    if args.output is not None:
        directory = outcome.artifact.write_dir(args.output)
        (directory / "backtest.json").write_text(
            json.dumps(outcome.backtest, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
    print(format_table(symbol, outcome.backtest))
    print(
        f"trained on {outcome.data_start}..{outcome.data_end} in "
        f"{outcome.training_seconds:.1f}s; MLflow run {outcome.mlflow_run_id}, "
        f"{outcome.registry_name} version {outcome.registry_version}"
    )
    previous = "none" if current is None else f"version {current[0]}"
    action = "promoted to champion" if promoted else f"not promoted (champion stays {previous})"
    print(f"gate ({outcome.decision.policy.value}): {action}: {outcome.decision.reason}")
    if args.output is not None:
        print(f"model files written to {args.output}")
    if service:
        print(f"recorded as model version {recorded.model_version_id} in the service database")
    return 0
