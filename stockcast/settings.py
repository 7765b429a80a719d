"""Service settings, read once from ``STOCKCAST_*`` environment variables at start-up.

Every value is parsed and checked here, so a bad value stops start-up with a one-line message that
names the variable instead of failing later, deep inside a job or a request.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from forecasting.promotion import PromotionPolicy
from forecasting.sources import parse_source_spec

T = TypeVar("T")

SUPPORTED_DATABASES = ("sqlite", "postgresql")
SCHEDULER_ROLES = ("both", "scheduler", "worker")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


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
    log_level: str = "INFO"
    # scheduler / worker
    scheduler_role: str = "both"
    worker_concurrency: int = 4
    train_concurrency: int = 1
    promotion_policy: PromotionPolicy = PromotionPolicy.NOT_WORSE_THAN_NAIVE
    default_horizon: int = 5
    default_lookback: int = 60
    train_epochs: int = 30
    initial_train_epochs: int = 5
    backtest_folds: int = 3
    backfill_years: int = 10
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
        tracking_uri = reader.get(
            "STOCKCAST_MLFLOW_TRACKING_URI",
            f"sqlite:///{(data_dir / 'mlflow.db').as_posix()}",
            _parse_tracking_uri,
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
            log_level=reader.get("STOCKCAST_LOG_LEVEL", "INFO", _choice(LOG_LEVELS, upper=True)),
            scheduler_role=reader.get("STOCKCAST_SCHEDULER_ROLE", "both", _choice(SCHEDULER_ROLES)),
            worker_concurrency=reader.get(
                "STOCKCAST_WORKER_CONCURRENCY", "4", _int_between(1, 256)
            ),
            train_concurrency=reader.get("STOCKCAST_TRAIN_CONCURRENCY", "1", _int_between(1, 64)),
            promotion_policy=reader.get(
                "STOCKCAST_PROMOTION_POLICY", "not_worse_than_naive", PromotionPolicy
            ),
            default_horizon=reader.get("STOCKCAST_DEFAULT_HORIZON", "5", _int_between(1, 30)),
            default_lookback=reader.get("STOCKCAST_DEFAULT_LOOKBACK", "60", _int_between(5, 500)),
            train_epochs=reader.get("STOCKCAST_TRAIN_EPOCHS", "30", _int_between(1, 500)),
            initial_train_epochs=reader.get(
                "STOCKCAST_INITIAL_TRAIN_EPOCHS", "5", _int_between(1, 500)
            ),
            backtest_folds=reader.get("STOCKCAST_BACKTEST_FOLDS", "3", _int_between(1, 20)),
            backfill_years=reader.get("STOCKCAST_BACKFILL_YEARS", "10", _int_between(1, 50)),
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
            raise SettingsError(name, f"{exc} (got {_shown(value)})") from None


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _non_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
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
