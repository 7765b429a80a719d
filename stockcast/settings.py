"""Service settings, read once from ``STOCKCAST_*`` environment variables at start-up.

Every value is parsed and checked here, so a bad value stops start-up with a one-line message that
names the variable instead of failing later, deep inside a job or a request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from forecasting.limits import (
    EPOCHS,
    FIRST_TRAINING_EPOCHS,
    FOLDS,
    HORIZON,
    LOOKBACK,
    IntRange,
)
from forecasting.promotion import PromotionPolicy, parse_policy
from forecasting.sources import parse_source_spec

T = TypeVar("T")

SUPPORTED_DATABASES = ("sqlite", "postgresql")
SCHEDULER_ROLES = ("both", "scheduler", "worker")
API_SERVERS = ("granian", "uvicorn")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
REPLAY_MODES = ("auto", "on", "off")
GLOBAL_RETRAIN_CADENCES = ("off", "weekly", "monthly")


class SettingsError(ValueError):
    """A ``STOCKCAST_*`` variable holds a value the service cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the processes are configured with; see the README's configuration reference."""

    data_dir: Path
    database_url: str
    mlflow_tracking_uri: str
    mlflow_artifact_root: str | None
    #: Where people open the MLflow UI (links in the API); defaults to an http(s) tracking URI.
    mlflow_ui_url: str | None = None
    source: str
    api_keys: tuple[str, ...]
    require_key_for_reads: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    #: The ASGI server of ``stockcast api``: granian served 2.8x uvicorn's forecast reads in
    #: ``bench/api.py``. ``stockcast up`` runs uvicorn in-process beside the scheduler.
    api_server: str = "granian"
    log_level: str = "INFO"
    # scheduler / worker
    scheduler_role: str = "both"
    worker_concurrency: int = 4
    train_concurrency: int = 1
    promotion_policy: PromotionPolicy = PromotionPolicy.EVIDENCE
    default_horizon: int = HORIZON.default
    default_lookback: int = LOOKBACK.default
    train_epochs: int = EPOCHS.default
    initial_train_epochs: int = FIRST_TRAINING_EPOCHS
    #: Epochs without a better validation loss before a training stops early.
    train_patience: int = 5
    backtest_folds: int = FOLDS.default
    backfill_years: int = 10
    #: Symbols per batch job of the daily refresh after a close.
    refresh_batch_size: int = 50
    refresh_batch_concurrency: int = 4
    #: The ``retrain_global`` schedule: ``off`` (none; queued on demand only), ``weekly`` or
    #: ``monthly`` (after the default exchange's last close of each week or month).
    global_retrain_cadence: str = "off"
    #: The market replay of ``stockcast up``: ``auto`` (on with the sample), ``on`` (any static
    #: source), ``off``; where it starts (sessions before the end of the data) and its pace.
    replay: str = "auto"
    replay_sessions: int = 60
    replay_step_seconds: float = 5.0
    # API
    rate_limit_per_minute: int = 30

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse the environment (``os.environ`` by default); raise :class:`SettingsError`."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        data_dir = Path(reader.get("STOCKCAST_DATA_DIR", "./var", _non_empty)).expanduser()
        database_url = reader.get(
            "STOCKCAST_DATABASE_URL",
            f"sqlite:///{(data_dir / 'stockcast.db').as_posix()}",
            parse_database_url,
        )
        file_store_allowed = env.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() in TRUTHY
        tracking_uri = reader.get(
            "STOCKCAST_MLFLOW_TRACKING_URI",
            f"sqlite:///{(data_dir / 'mlflow.db').as_posix()}",
            _parse_store_uri if not file_store_allowed else _parse_tracking_uri,
        )
        local_tracking = tracking_uri.startswith(("sqlite:", "file:", "/", "."))
        artifact_root_default = (
            (data_dir / "mlartifacts").resolve().as_uri() if local_tracking else ""
        )
        artifact_root = reader.get("STOCKCAST_MLFLOW_ARTIFACT_ROOT", artifact_root_default, str)
        remote_tracking = tracking_uri.startswith(("http://", "https://"))
        ui_url = reader.get(
            "STOCKCAST_MLFLOW_UI_URL", tracking_uri if remote_tracking else "", _parse_tracking_uri
        )
        return cls(
            mlflow_ui_url=ui_url or None,
            data_dir=data_dir,
            database_url=database_url,
            mlflow_tracking_uri=tracking_uri,
            mlflow_artifact_root=artifact_root or None,
            source=reader.get("STOCKCAST_SOURCE", "yfinance", parse_source_spec),
            api_keys=reader.get("STOCKCAST_API_KEYS", "", _parse_api_keys),
            require_key_for_reads=reader.get("STOCKCAST_REQUIRE_KEY_FOR_READS", "false", _bool),
            host=reader.get("STOCKCAST_HOST", "127.0.0.1", _non_empty),
            port=reader.get("STOCKCAST_PORT", "8000", _int_between(1, 65535)),
            api_server=reader.get("STOCKCAST_API_SERVER", "granian", _choice(API_SERVERS)),
            log_level=reader.get("STOCKCAST_LOG_LEVEL", "INFO", _choice(LOG_LEVELS, upper=True)),
            scheduler_role=reader.get("STOCKCAST_SCHEDULER_ROLE", "both", _choice(SCHEDULER_ROLES)),
            worker_concurrency=reader.get(
                "STOCKCAST_WORKER_CONCURRENCY", "4", _int_between(1, 256)
            ),
            train_concurrency=reader.get("STOCKCAST_TRAIN_CONCURRENCY", "1", _int_between(1, 64)),
            promotion_policy=reader.get("STOCKCAST_PROMOTION_POLICY", "evidence", parse_policy),
            default_horizon=reader.get_int("STOCKCAST_DEFAULT_HORIZON", HORIZON),
            default_lookback=reader.get_int("STOCKCAST_DEFAULT_LOOKBACK", LOOKBACK),
            train_epochs=reader.get_int("STOCKCAST_TRAIN_EPOCHS", EPOCHS),
            initial_train_epochs=reader.get_int(
                "STOCKCAST_INITIAL_TRAIN_EPOCHS", EPOCHS, default=FIRST_TRAINING_EPOCHS
            ),
            train_patience=reader.get("STOCKCAST_TRAIN_PATIENCE", "5", _int_between(1, 500)),
            backtest_folds=reader.get_int("STOCKCAST_BACKTEST_FOLDS", FOLDS),
            backfill_years=reader.get("STOCKCAST_BACKFILL_YEARS", "10", _int_between(1, 50)),
            refresh_batch_size=reader.get(
                "STOCKCAST_REFRESH_BATCH_SIZE", "50", _int_between(1, 10_000)
            ),
            refresh_batch_concurrency=reader.get(
                "STOCKCAST_REFRESH_BATCH_CONCURRENCY", "4", _int_between(1, 64)
            ),
            global_retrain_cadence=reader.get(
                "STOCKCAST_GLOBAL_RETRAIN_CADENCE", "off", _choice(GLOBAL_RETRAIN_CADENCES)
            ),
            replay=reader.get("STOCKCAST_REPLAY", "auto", _choice(REPLAY_MODES)),
            replay_sessions=reader.get("STOCKCAST_REPLAY_SESSIONS", "60", _int_between(1, 100_000)),
            replay_step_seconds=reader.get(
                "STOCKCAST_REPLAY_STEP_SECONDS", "5", _float_between(0.1, 3600.0)
            ),
            rate_limit_per_minute=reader.get(
                "STOCKCAST_RATE_LIMIT_PER_MINUTE", "30", _int_between(1, 100_000)
            ),
        )


class _Reader:
    """Reads one variable at a time and turns any parse failure into a :class:`SettingsError`."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str, default: str, parse: Callable[[str], T]) -> T:
        raw = self._env.get(name)
        value = default if raw is None or raw.strip() == "" else raw.strip()
        try:
            return parse(value)
        except SettingsError:
            raise
        except (ValueError, TypeError) as exc:
            shown = "the value is not shown" if _is_secret(name) else f"got {_shown(value)}"
            raise SettingsError(name, f"{exc} ({shown})") from None

    def get_int(self, name: str, limits: IntRange, *, default: int | None = None) -> int:
        """An integer setting in ``limits`` (``forecasting.limits``), by default its default."""
        fallback = limits.default if default is None else default
        return self.get(name, str(fallback), _int_between(limits.low, limits.high))


#: Parts of a setting's name that mark a secret: its value is never echoed in an error.
_SECRET_MARKERS: Final = ("KEY", "SECRET", "PASSWORD", "TOKEN")


def _is_secret(name: str) -> bool:
    return any(marker in name.upper() for marker in _SECRET_MARKERS)


def _shown(value: str) -> str:
    # A database URL's password stays out of the message too.
    value = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", value)
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _non_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


TRUTHY = ("1", "true", "yes", "on")


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in TRUTHY:
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError("expected an integer") from None
        if not low <= number <= high:
            raise ValueError(f"expected an integer from {low} to {high}")
        return number

    return parse


def _float_between(low: float, high: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise ValueError("expected a number") from None
        if not low <= number <= high:  # also refuses nan
            raise ValueError(f"expected a number from {low:g} to {high:g}")
        return number

    return parse


def _choice(options: tuple[str, ...], *, upper: bool = False) -> Callable[[str], str]:
    def parse(value: str) -> str:
        candidate = value.upper() if upper else value.lower()
        if candidate not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return candidate

    return parse


def _parse_api_keys(value: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in value.split(",") if key.strip())
    for key in keys:
        if len(key) < 16:
            raise ValueError("every API key must be at least 16 characters long")
    return keys


def _parse_tracking_uri(value: str) -> str:
    if any(ch.isspace() for ch in value):
        raise ValueError("a tracking URI has no whitespace")
    return value


def _parse_store_uri(value: str) -> str:
    """A tracking store MLflow will write to. MLflow 3's file store (``file:`` or a bare path)
    raises on every new run unless ``MLFLOW_ALLOW_FILE_STORE=true``: refused here, at start-up,
    instead of as a failed training hours later."""
    uri = _parse_tracking_uri(value)
    if uri.startswith(("file:", "/", ".")):
        raise ValueError(
            "MLflow's file store takes no new runs; use a database "
            "(sqlite:///PATH/mlflow.db, the default) or an http(s) tracking server, "
            "or set MLFLOW_ALLOW_FILE_STORE=true"
        )
    return uri


def parse_database_url(value: str) -> str:
    """Check that ``value`` is a SQLAlchemy URL for SQLite or PostgreSQL and return it.

    Driver suffixes are allowed (``postgresql+psycopg://``); the engine factories in ``db`` pick the
    async and sync drivers themselves.
    """
    try:
        url: URL = make_url(value)
    except ArgumentError:
        raise ValueError(
            "not a database URL (expected sqlite:///PATH or postgresql://...)"
        ) from None
    backend = url.get_backend_name()
    if backend not in SUPPORTED_DATABASES:
        raise ValueError(f"unsupported database {backend!r}; use sqlite or postgresql")
    if backend == "postgresql" and not url.database:
        raise ValueError("a PostgreSQL URL must name a database")
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise ValueError("SQLite needs a file path (an in-memory database is not shared)")
    return value
