"""``stockcast scheduler`` (and ``python -m scheduler``): run a scheduler/worker node."""

from __future__ import annotations

import argparse
from dataclasses import replace

from sqlalchemy.exc import DBAPIError, OperationalError

from db.engine import first_line
from db.models import RetrainCadence
from forecasting.config import BacktestConfig, InvalidConfigError, ModelConfig, TrainConfig
from scheduler.config import ROLES, InvalidSchedulerConfigError, SchedulerConfig, TrainingDefaults
from stockcast.cli import CommandError
from stockcast.schema import head_revision
from stockcast.settings import Settings


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "scheduler",
        help="run a scheduler/worker node (APScheduler 4): ingest, forecast, evaluate, retrain",
        description=(
            "Runs the symbols' schedules and the queued jobs until SIGTERM/SIGINT, then stops "
            "gracefully. Any number of nodes may share a PostgreSQL database; on SQLite only one "
            "scheduler process may run. Run `stockcast db upgrade` first."
        ),
    )
    parser.add_argument(
        "--role",
        choices=ROLES,
        help="both (default: STOCKCAST_SCHEDULER_ROLE), scheduler (schedules only) or worker",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="jobs this node runs at once (default: STOCKCAST_WORKER_CONCURRENCY)",
    )
    parser.add_argument("--identity", help="this node's name in job records (default host-pid)")
    parser.add_argument(
        "--lease-seconds", type=float, help="how long a node's claim on a job lasts (default 60)"
    )
    parser.add_argument(
        "--cleanup-seconds",
        type=float,
        help="how often expired claims are released as abandoned (default 60)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        help="idle wake-up period for jobs (default 2 on SQLite, 30 on PostgreSQL)",
    )
    parser.add_argument(
        "--shutdown-seconds",
        type=float,
        help="how long a stop waits for running jobs before cancelling them (default 30)",
    )
    parser.set_defaults(handler=run_scheduler)


def scheduler_config(settings: Settings) -> SchedulerConfig:
    """The node's configuration, taken from the settings."""
    return SchedulerConfig(
        database_url=settings.database_url,
        source=settings.source,
        expected_revision=head_revision(),
        role=settings.scheduler_role,
        max_concurrent_jobs=settings.worker_concurrency,
        train_concurrency=settings.train_concurrency,
        backfill_years=settings.backfill_years,
        refresh_batch_size=settings.refresh_batch_size,
        refresh_batch_concurrency=settings.refresh_batch_concurrency,
        global_retrain_cadence=(
            None
            if settings.global_retrain_cadence == "off"
            else RetrainCadence(settings.global_retrain_cadence)
        ),
        training=TrainingDefaults(
            model=ModelConfig(horizon=settings.default_horizon, lookback=settings.default_lookback),
            train=TrainConfig(epochs=settings.train_epochs, patience=settings.train_patience),
            backtest=BacktestConfig(folds=settings.backtest_folds),
            initial_epochs=settings.initial_train_epochs,
            policy=settings.promotion_policy,
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_root=settings.mlflow_artifact_root,
        ),
    )


def _with_options(config: SchedulerConfig, args: argparse.Namespace) -> SchedulerConfig:
    overrides: dict[str, object] = {}
    for option, name in (
        ("role", "role"),
        ("concurrency", "max_concurrent_jobs"),
        ("identity", "identity"),
        ("lease_seconds", "lease_duration"),
        ("cleanup_seconds", "cleanup_interval"),
        ("poll_seconds", "poll_interval"),
        ("shutdown_seconds", "shutdown_timeout"),
    ):
        value = getattr(args, option, None)
        if value is not None:
            overrides[name] = value
    return replace(config, **overrides)  # type: ignore[arg-type]


def run_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    from db.apscheduler_workarounds import SchedulerAlreadyRunningError
    from scheduler.daemon import SchemaNotReadyError, serve

    try:
        config = _with_options(scheduler_config(settings), args)
    except (InvalidSchedulerConfigError, InvalidConfigError) as exc:
        raise CommandError(str(exc), status=2) from exc
    try:
        anyio.run(serve, config, backend="asyncio")
    except (SchedulerAlreadyRunningError, SchemaNotReadyError) as exc:
        raise CommandError(str(exc)) from exc
    except (OperationalError, DBAPIError) as exc:
        reason = first_line(getattr(exc, "orig", None) or exc)
        raise CommandError(f"cannot use the database: {reason}") from exc
    return 0
