"""What the scheduler/worker process is configured with, handed over by the composition root.

Plain frozen values, checked on construction, so a bad setting stops start-up with a message that
names the field instead of failing inside a job hours later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from forecasting.promotion import PromotionPolicy

ROLES: Final = ("both", "scheduler", "worker")


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

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before try number ``attempt`` (2, 3, ...): exponential, capped."""
        exponent = max(attempt - 2, 0)
        return float(min(self.initial_delay * self.multiplier**exponent, self.max_delay))


@dataclass(frozen=True, kw_only=True)
class TaskLimits:
    """How many jobs of each task may run at once across the whole cluster.

    APScheduler's default is 1 per task for the whole cluster, which would serialise every
    symbol's ingest behind the others. Ingest is bounded to spare the data provider's rate limit;
    retraining is bounded again per worker by ``train_concurrency``; ``sync_schedules`` runs
    alone because two syncs at once would only do the same work twice.
    """

    ingest: int = 8
    forecast: int = 32
    evaluate: int = 32
    retrain: int = 8
    sync_schedules: int = 1

    def __post_init__(self) -> None:
        for name in ("ingest", "forecast", "evaluate", "retrain", "sync_schedules"):
            _int_between(f"limits.{name}", getattr(self, name), 1, 10_000)


@dataclass(frozen=True, kw_only=True)
class TrainingDefaults:
    """The model and training settings a retrain job uses where its parameters say nothing.

    ``initial_*`` apply to the short first training of a newly watched symbol, so it gets a model
    within minutes and a full one at its first scheduled retrain.
    """

    epochs: int = 30
    initial_epochs: int = 5
    folds: int = 3
    initial_folds: int = 1
    test_size: int = 126
    hidden_size: int = 64
    num_layers: int = 2
    batch_size: int = 64
    max_history: int | None = 2520
    accelerator: str = "auto"
    num_threads: int | None = None
    policy: PromotionPolicy = PromotionPolicy.NOT_WORSE_THAN_NAIVE
    tracking_uri: str | None = None
    artifact_root: str | None = None

    def __post_init__(self) -> None:
        _int_between("training.epochs", self.epochs, 1, 500)
        _int_between("training.initial_epochs", self.initial_epochs, 1, 500)
        _int_between("training.folds", self.folds, 1, 20)
        _int_between("training.initial_folds", self.initial_folds, 1, 20)
        _int_between("training.test_size", self.test_size, 1, 5000)
        _int_between("training.hidden_size", self.hidden_size, 1, 1024)
        _int_between("training.num_layers", self.num_layers, 1, 8)
        _int_between("training.batch_size", self.batch_size, 1, 4096)
        if self.max_history is not None:
            _int_between("training.max_history", self.max_history, 100, 1_000_000)
        if self.num_threads is not None:
            _int_between("training.num_threads", self.num_threads, 1, 256)
        if not isinstance(self.policy, PromotionPolicy):
            raise InvalidSchedulerConfigError("training.policy", "expected a PromotionPolicy")


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
    poll_interval: float | None = None
    schedule_sync_interval: float = 900.0
    shutdown_timeout: float = 30.0
    ingest_delay: float = 1800.0
    retrain_delay: float = 7200.0
    ingest_misfire_grace: float = 4 * 86400.0
    retrain_misfire_grace: float = 7 * 86400.0
    backfill_years: int = 10
    default_horizon: int = 5
    default_lookback: int = 60
    forecast_history: int = 300
    source_timeout: float = 30.0
    job_timeouts: dict[str, float] = field(
        default_factory=lambda: {
            "ingest": 600.0,
            "forecast": 300.0,
            "evaluate": 300.0,
            "retrain": 6 * 3600.0,
            "sync_schedules": 300.0,
        }
    )
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limits: TaskLimits = field(default_factory=TaskLimits)
    training: TrainingDefaults = field(default_factory=TrainingDefaults)
    job_result_expiration: float = 3600.0

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidSchedulerConfigError("role", f"expected one of {', '.join(ROLES)}")
        _int_between("max_concurrent_jobs", self.max_concurrent_jobs, 1, 1000)
        _int_between("train_concurrency", self.train_concurrency, 1, 64)
        for name in (
            "lease_duration",
            "cleanup_interval",
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
        _int_between("default_horizon", self.default_horizon, 1, 30)
        _int_between("default_lookback", self.default_lookback, 5, 500)
        _int_between("forecast_history", self.forecast_history, 2, 100_000)
        for kind, seconds in self.job_timeouts.items():
            _positive(f"job_timeouts[{kind}]", seconds)

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
