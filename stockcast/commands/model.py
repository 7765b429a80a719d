"""``stockcast train`` and ``stockcast backtest``: train a symbol's LSTM (MLflow run, registry
version, promotion gate) or just measure every candidate (naive, drift and the LSTM, each with
volatility-adaptive intervals) and see which one the gate would serve. Both work
offline with ``--source csv:DIR`` or ``--source sample``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from forecasting.limits import BATCH_SIZE, EPOCHS, FOLDS, HORIZON, LOOKBACK, TEST_SIZE
from stockcast.cli import EXIT_USAGE, CommandError
from stockcast.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from forecasting.artifacts import ModelArtifact
    from forecasting.backtest import BacktestReport
    from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
    from forecasting.promotion import PromotionPolicy
    from forecasting.training import TrainingOutcome

#: Rows of the point-forecast table: (metric key, label).
TABLE_METRICS = (
    ("mase", "MASE (log returns)"),
    ("theil_u2", "Theil's U2"),
    ("directional_accuracy", "directional accuracy"),
    ("rmse", "RMSE"),
    ("mae", "MAE"),
    ("mape", "MAPE %"),
    ("r2", "R² (prices)"),
)
#: Columns of the interval table: (key, header).
INTERVAL_COLUMNS = (
    ("coverage_80", "cov80"),
    ("coverage_95", "cov95"),
    ("interval_score_80", "IS80"),
    ("interval_score_95", "IS95"),
    ("crps", "CRPS"),
    ("kupiec_min_p_80", "Kupiec80"),
    ("kupiec_min_p_95", "Kupiec95"),
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
    train.add_argument(
        "--batch-size",
        type=int,
        help=f"training batch size, {BATCH_SIZE.describe()} (default {BATCH_SIZE.default})",
    )
    _add_policy_option(train)
    train.add_argument(
        "--output", type=Path, help="also write the model files and backtest.json to this directory"
    )
    train.set_defaults(handler=run_train)

    backtest = subparsers.add_parser(
        "backtest",
        help="walk-forward backtest of every candidate and the model the gate would serve "
        "(prints tables or JSON)",
    )
    _add_data_options(backtest)
    _add_model_options(backtest)
    backtest.add_argument(
        "--json", action="store_true", help="print the report as JSON on stdout, nothing else"
    )
    _add_policy_option(backtest)
    backtest.set_defaults(handler=run_backtest)


def _add_policy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        help="promotion gate: evidence, beat_champion or always "
        "(default STOCKCAST_PROMOTION_POLICY, itself 'evidence')",
    )


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("symbol", metavar="SYMBOL", help="ticker, e.g. SPY")
    parser.add_argument("--source", help="yfinance, csv:DIR or sample (default STOCKCAST_SOURCE)")
    parser.add_argument("--start", help="first date to use, YYYY-MM-DD")
    parser.add_argument("--end", help="last date to use, YYYY-MM-DD")
    parser.add_argument(
        "--drop-bad", action="store_true", help="drop invalid bars (reported) instead of refusing"
    )


#: The model options of ``train`` and ``backtest``: flag, range (``forecasting.limits``), what it
#: is, where its default comes from.
_MODEL_OPTIONS: Final = (
    ("--epochs", EPOCHS, "maximum epochs", "STOCKCAST_TRAIN_EPOCHS"),
    ("--horizon", HORIZON, "trading days ahead", "STOCKCAST_DEFAULT_HORIZON"),
    ("--lookback", LOOKBACK, "window in trading days", "STOCKCAST_DEFAULT_LOOKBACK"),
    ("--folds", FOLDS, "backtest folds", "STOCKCAST_BACKTEST_FOLDS"),
    ("--test-size", TEST_SIZE, "forecast origins per fold", str(TEST_SIZE.default)),
)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    for flag, limits, what, default in _MODEL_OPTIONS:
        parser.add_argument(flag, type=int, help=f"{what}, {limits.describe()} (default {default})")
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
            batch_size=pick(getattr(args, "batch_size", None), BATCH_SIZE.default),
            progress_bar=progress_bar,
        )
        backtest = BacktestConfig(
            folds=pick(args.folds, settings.backtest_folds),
            test_size=pick(args.test_size, TEST_SIZE.default),
            refit=args.refit,
        )
    except InvalidConfigError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    return model, train, backtest


def _policy(args: argparse.Namespace, settings: Settings) -> PromotionPolicy:
    from forecasting.promotion import UnknownPolicyError, parse_policy

    try:
        return parse_policy(args.policy) if args.policy else settings.promotion_policy
    except UnknownPolicyError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None


def _run_backtest(
    bars: pd.DataFrame,
    configs: tuple[ModelConfig, TrainConfig, BacktestConfig],
    policy: PromotionPolicy,
) -> BacktestReport:
    from forecasting.backtest import walk_forward
    from forecasting.windowing import InsufficientDataError

    model, train, backtest = configs
    try:
        return walk_forward(
            bars,
            model_config=model,
            train_config=train,
            backtest_config=backtest,
            policy=policy,
        )
    except InsufficientDataError as exc:
        raise CommandError(str(exc)) from None


def _cell(value: Any, width: int = 10) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}.4f}"


def format_table(symbol: str, report: dict[str, Any]) -> str:
    """The point models side by side, one metric per line; every candidate's intervals; the
    DM tests with their sidedness; and what the gate would serve."""
    points = report["points"]
    models = [m for m in ("lstm", "naive", "drift", "champion") if m in points]
    backtest = report["config"]["backtest"]
    mode = "refit per fold" if backtest["refit"] else "fit once"
    lines = [
        f"{symbol}: walk-forward backtest, {len(report['folds'])} fold(s) x "
        f"{backtest['test_size']} origins ({report['windows']} forecasts), "
        f"horizon {report['horizon']}, {mode}",
        f"{'metric':<24}" + "".join(f"{m:>12}" for m in models),
    ]
    for key, label in TABLE_METRICS:
        lines.append(f"{label:<24}" + "".join(_cell(points[m].get(key), 12) for m in models))
    lines.append(
        f"{'intervals (% log return)':<32}" + "".join(f"{h:>10}" for _, h in INTERVAL_COLUMNS)
    )
    for name, figures in {**report["candidates"], **report["references"]}.items():
        reference = " (ref)" if name in report["references"] else ""
        lines.append(
            f"{name + reference:<32}"
            + "".join(_cell(figures.get(key)) for key, _ in INTERVAL_COLUMNS)
        )
    lstm = next(c for n, c in report["candidates"].items() if n.startswith("lstm+"))
    for base in ("naive", "drift"):
        test = lstm["dm"][f"squared_error_vs_{base}"]
        statistic = "inf" if test["statistic"] is None else f"{test['statistic']:.3f}"
        lines.append(
            f"Diebold-Mariano LSTM vs {base} (squared error): statistic {statistic}, "
            f"p={test['p_two_sided']:.4f} (two-sided), "
            f"p={test['p_one_sided_better']:.4f} (one-sided, LSTM better), "
            f"p={test['p_one_sided_worse']:.4f} (one-sided, LSTM worse)"
        )
    decision = report["decision"]
    lines.append(
        f"gate ({decision['policy']}) would serve {report['selected']}: {decision['reason']}"
    )
    return "\n".join(lines)


def run_backtest(args: argparse.Namespace, settings: Settings) -> int:
    symbol, bars = load_bars(args, settings)
    policy = _policy(args, settings)
    configs = build_configs(args, settings, progress_bar=not args.json and sys.stdout.isatty())
    report = _run_backtest(bars, configs, policy).to_dict()
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
    from forecasting.tracking import TrackingError
    from forecasting.training import train_challenger
    from forecasting.windowing import InsufficientDataError

    policy = _policy(args, settings)
    symbol, bars = load_bars(args, settings)
    model, train, backtest = build_configs(args, settings, progress_bar=sys.stdout.isatty())
    # With a migrated service database, the CLI judges against the serving champion and records
    # the model there exactly as the scheduler's retrain job does (scheduler.model_records).
    service = _service_database_ready(settings)
    try:
        current = _current_champion(settings, symbol, service=service)
        outcome = train_challenger(
            symbol=symbol,
            bars=bars,
            model_config=model,
            train_config=train,
            backtest_config=backtest,
            policy=policy,
            champion=None if current is None else current[1],
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_root=settings.mlflow_artifact_root,
        )
        params = {"model": model.to_dict(), "train": train.to_dict(), "source": "cli"}
        promoted, recorded_id = _record(settings, symbol, outcome, params, service=service)
    except (TrackingError, InsufficientDataError) as exc:
        raise CommandError(str(exc)) from None
    _report(args, symbol, outcome, current=current, promoted=promoted)
    if recorded_id is not None:
        print(f"recorded as model version {recorded_id} in the service database")
    return 0


def _current_champion(
    settings: Settings, symbol: str, *, service: bool
) -> tuple[int, ModelArtifact] | None:
    """The champion the challenger is judged against: the serving one, else MLflow's alias."""
    from forecasting.tracking import load_champion
    from scheduler.model_records import run_with_database, service_champion

    if not service:
        return load_champion(settings.mlflow_tracking_uri, symbol)
    champion = run_with_database(
        settings.database_url, lambda sessions: service_champion(sessions, symbol)
    )
    return None if champion is None else (champion.version_id, champion.artifact)


def _record(
    settings: Settings,
    symbol: str,
    outcome: TrainingOutcome,
    params: dict[str, Any],
    *,
    service: bool,
) -> tuple[bool, int | None]:
    """Apply the gate: in the service database (and then the MLflow alias), or in MLflow alone.
    Returns whether the challenger was promoted and its model version id in the database."""
    from forecasting.tracking import set_champion_alias
    from scheduler.model_records import record_training_outcome, run_with_database

    tracking_uri = settings.mlflow_tracking_uri
    if service:
        recorded = run_with_database(
            settings.database_url,
            lambda sessions: record_training_outcome(
                sessions, symbol=symbol, outcome=outcome, params=params, tracking_uri=tracking_uri
            ),
        )
        return recorded.promoted, recorded.model_version_id
    promoted = outcome.decision.promote and outcome.registry_version is not None
    if promoted and outcome.registry_version is not None:
        set_champion_alias(tracking_uri, symbol, outcome.registry_version)
    return promoted, None


def _report(
    args: argparse.Namespace,
    symbol: str,
    outcome: TrainingOutcome,
    *,
    current: tuple[int, ModelArtifact] | None,
    promoted: bool,
) -> None:
    """Print the backtest table and the gate's verdict; write the files ``--output`` asks for."""
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
