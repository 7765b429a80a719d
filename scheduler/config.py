"""What the scheduler/worker process is configured with, handed over by the composition root.

Plain frozen values, checked on construction, so a bad setting stops start-up with a message that
names the field instead of failing inside a job hours later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from tenacity import wait_exponential

from db.models import RetrainCadence
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.limits import (
    EPOCHS,
    FIRST_TRAINING_EPOCHS,
    FIRST_TRAINING_FOLDS,
    FOLDS,
    IntRange,
)
from forecasting.promotion import PromotionPolicy

ROLES: Final = ("both", "scheduler", "worker")
#: How often the ``retrain_global`` schedule may fire: every close would start a job that trains
#: for the whole watchlist each evening, longer than a session leaves at scale.
GLOBAL_RETRAIN_CADENCES: Final = (RetrainCadence.WEEKLY, RetrainCadence.MONTHLY)


class InvalidSchedulerConfigError(ValueError):
    """A scheduler setting outside its allowed range; the message names the setting."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"scheduler setting {name}: {problem}")
        self.name = name
        self.problem = problem


def _positive(name: str, value: float | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidSchedulerConfigError(name, f"expected a positive number, got {value!r}")


def _int_between(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidSchedulerConfigError(name, f"expected an integer from {low} to {high}")


def _in_range(name: str, value: object, limits: IntRange) -> None:
    _int_between(name, value, limits.low, limits.high)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Retries of transient failures (data source down, timeouts) inside one job.

    The job keeps its id and its worker slot while it waits, so ``job_runs.attempts`` counts
    the tries. Permanent failures (unknown symbol, invalid data) are never retried.
    """

    max_attempts: int = 4
    initial_delay: float = 30.0
    multiplier: float = 2.0
    max_delay: float = 600.0

    def __post_init__(self) -> None:
        _int_between("retry.max_attempts", self.max_attempts, 1, 20)
        _positive("retry.initial_delay", self.initial_delay)
        _positive("retry.max_delay", self.max_delay)
        if not self.multiplier >= 1:
            raise InvalidSchedulerConfigError("retry.multiplier", "expected a number >= 1")

    def wait(self) -> wait_exponential:
        """Tenacity's wait between tries: ``initial_delay`` after the first, ``multiplier`` times
        longer after each next one, never more than ``max_delay``."""
        return wait_exponential(
            multiplier=self.initial_delay, exp_base=self.multiplier, max=self.max_delay
        )


@dataclass(frozen=True, kw_only=True)
class TaskLimits:
    """How many jobs of each task may run at once across the whole cluster.

    APScheduler's default is 1 per task for the whole cluster, which would serialise every
    symbol's ingest behind the others. Ingest is bounded to spare the data provider's rate limit;
    retraining is bounded again per node by ``train_concurrency``, when jobs are acquired (a node
    never takes a retrain it has no free slot for: ``db.apscheduler_workarounds``); ``sync_schedules`` runs
    alone because two syncs at once would only do the same work twice.
    """

    ingest: int = 8
    forecast: int = 32
    evaluate: int = 32
    retrain: int = 8
    sync_schedules: int = 1
    #: One global retrain at a time: it trains for the whole watchlist.
    retrain_global: int = 1
    #: The per-exchange split after a close: cheap, one at a time is plenty.
    refresh: int = 4
    #: Batches in flight across the cluster; each worker slot takes one at a time.
    refresh_batch: int = 64

    def __post_init__(self) -> None:
        for name in (
            "ingest",
            "forecast",
            "evaluate",
            "retrain",
            "sync_schedules",
            "retrain_global",
            "refresh",
            "refresh_batch",
        ):
            _int_between(f"limits.{name}", getattr(self, name), 1, 10_000)


@dataclass(frozen=True, kw_only=True)
class TrainingDefaults:
    """The model, training and backtest settings a retrain job uses where its parameters and the
    symbol's settings say nothing: whole ``forecasting`` configurations, which check themselves.

    ``initial_*`` apply to the short first training of a newly watched symbol, so it gets a model
    within minutes and a full one at its first scheduled retrain. ``model.horizon`` and
    ``model.lookback`` are also the settings of a symbol trained without being watched.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    initial_epochs: int = FIRST_TRAINING_EPOCHS
    initial_folds: int = FIRST_TRAINING_FOLDS
    policy: PromotionPolicy = PromotionPolicy.EVIDENCE
    tracking_uri: str | None = None
    artifact_root: str | None = None

    def __post_init__(self) -> None:
        for name, kind in (
            ("model", ModelConfig),
            ("train", TrainConfig),
            ("backtest", BacktestConfig),
            ("policy", PromotionPolicy),
        ):
            if not isinstance(getattr(self, name), kind):
                raise InvalidSchedulerConfigError(f"training.{name}", f"expected a {kind.__name__}")
        _in_range("training.initial_epochs", self.initial_epochs, EPOCHS)
        _in_range("training.initial_folds", self.initial_folds, FOLDS)


@dataclass(frozen=True, kw_only=True)
class ReplaySettings:
    """A market replay: start ``sessions`` sessions before the end of the data, advance one
    session every ``step_seconds``."""

    sessions: int = 60
    step_seconds: float = 5.0

    def __post_init__(self) -> None:
        _int_between("replay.sessions", self.sessions, 1, 100_000)
        _positive("replay.step_seconds", self.step_seconds)


@dataclass(frozen=True, kw_only=True)
class SchedulerConfig:
    """Everything one scheduler/worker node needs; built by ``stockcast.commands.scheduler``.

    Durations are seconds. ``poll_interval`` is how often an idle worker looks for jobs without
    being told: on SQLite no broker carries APScheduler's events between processes, so a job
    enqueued by the API process is found by polling (default 2 s); on PostgreSQL the broker wakes
    the workers and polling is only a safety net for a lost notification (default 30 s).
    ``ingest_delay`` is how long after an exchange's close the day's bar is fetched (providers
    publish the final bar a little after the close). ``expected_revision``, when given, is the
    Alembic head the database must be at before the node starts.
    """

    database_url: str
    source: str
    expected_revision: str | None = None
    role: str = "both"
    identity: str | None = None
    max_concurrent_jobs: int = 4
    train_concurrency: int = 1
    lease_duration: float = 60.0
    cleanup_interval: float = 60.0
    #: Seconds between the node's heartbeats (``scheduler_heartbeats``; ``stockcast health``).
    heartbeat_interval: float = 10.0
    poll_interval: float | None = None
    schedule_sync_interval: float = 900.0
    shutdown_timeout: float = 30.0
    ingest_delay: float = 1800.0
    retrain_delay: float = 7200.0
    ingest_misfire_grace: float = 4 * 86400.0
    retrain_misfire_grace: float = 7 * 86400.0
    backfill_years: int = 10
    forecast_history: int = 300
    #: Symbols per ``refresh_batch`` job after a close (one fetch, one write, one forecast pass).
    refresh_batch_size: int = 50
    #: ``refresh_batch`` jobs one node holds at once (a node limit, like the training slots).
    #: Measured on 2 cores (README): one at a time made a one-process daily refresh faster (its
    #: batches no longer interleave on one interpreter) and lets two nodes share the last
    #: batches, but made a 1,000-symbol registration slower (169 s against 101 s: its batches
    #: wait on PostgreSQL's upserts, which four at once overlap with Python work). The default
    #: keeps four, the node's job slots, as before.
    refresh_batch_concurrency: int = 4
    #: The ``retrain_global`` schedule's cadence on the default exchange's closes; None: no
    #: schedule (the job is then queued only on demand, ``POST /train/global``).
    global_retrain_cadence: RetrainCadence | None = None
    source_timeout: float = 30.0
    job_timeouts: dict[str, float] = field(
        default_factory=lambda: {
            "ingest": 600.0,
            "forecast": 300.0,
            "evaluate": 300.0,
            "retrain": 6 * 3600.0,
            "retrain_global": 24 * 3600.0,
            "sync_schedules": 300.0,
            "refresh": 300.0,
            "refresh_batch": 1800.0,
        }
    )
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limits: TaskLimits = field(default_factory=TaskLimits)
    training: TrainingDefaults = field(default_factory=TrainingDefaults)
    job_result_expiration: float = 3600.0
    #: A market replay of a static source (the all-in-one default on the sample); None: live.
    replay: ReplaySettings | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidSchedulerConfigError("role", f"expected one of {', '.join(ROLES)}")
        _int_between("max_concurrent_jobs", self.max_concurrent_jobs, 1, 1000)
        _int_between("train_concurrency", self.train_concurrency, 1, 64)
        for name in (
            "lease_duration",
            "cleanup_interval",
            "heartbeat_interval",
            "schedule_sync_interval",
            "shutdown_timeout",
            "ingest_misfire_grace",
            "retrain_misfire_grace",
            "source_timeout",
            "job_result_expiration",
        ):
            _positive(name, getattr(self, name))
        _positive("poll_interval", self.poll_interval, allow_none=True)
        for name in ("ingest_delay", "retrain_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidSchedulerConfigError(name, "expected a number of seconds >= 0")
        _int_between("backfill_years", self.backfill_years, 1, 50)
        _int_between("forecast_history", self.forecast_history, 2, 100_000)
        _int_between("refresh_batch_size", self.refresh_batch_size, 1, 10_000)
        _int_between("refresh_batch_concurrency", self.refresh_batch_concurrency, 1, 64)
        if (
            self.global_retrain_cadence is not None
            and self.global_retrain_cadence not in GLOBAL_RETRAIN_CADENCES
        ):
            raise InvalidSchedulerConfigError(
                "global_retrain_cadence", "expected weekly, monthly or None (no schedule)"
            )
        for kind, seconds in self.job_timeouts.items():
            _positive(f"job_timeouts[{kind}]", seconds)
        if self.replay is not None and self.source == "yfinance":
            raise InvalidSchedulerConfigError(
                "replay", "a market replay needs a static source (sample or csv:DIR), not yfinance"
            )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def effective_poll_interval(self) -> float:
        if self.poll_interval is not None:
            return self.poll_interval
        return 2.0 if self.is_sqlite else 30.0

    def timeout_for(self, kind: str) -> float:
        return self.job_timeouts.get(kind, 600.0)
