"""What the API process is configured with, handed over by the composition root."""

from __future__ import annotations

import math
from dataclasses import dataclass

from forecasting.limits import HORIZON, LOOKBACK


class InvalidWebConfigError(ValueError):
    """A :class:`WebConfig` field outside the range the API can work with."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"WebConfig.{field_name}: {problem}")
        self.field_name = field_name
        self.problem = problem


@dataclass(frozen=True, kw_only=True)
class WebConfig:
    """The API's view of the settings; built from ``STOCKCAST_*`` variables by the CLI."""

    database_url: str
    #: The Alembic head this code expects; ``/ready`` answers 503 until the database is there.
    expected_revision: str
    api_keys: tuple[str, ...] = ()
    require_key_for_reads: bool = False
    source: str = "yfinance"
    rate_limit_per_minute: int = 30
    default_horizon: int = HORIZON.default
    default_lookback: int = LOOKBACK.default
    title: str = "stockcast"
    version: str = "0.1.0"
    #: Base URL of the MLflow UI (``http://mlflow:5000``); model payloads link runs there when set.
    mlflow_ui_url: str | None = None
    #: How often the event tailer reads new rows of ``events`` (SSE latency, cache invalidation).
    event_poll_interval_s: float = 0.5
    #: How long the tailer waits for a missing event id (a transaction that committed out of order
    #: on PostgreSQL) before it gives up on it and streams what follows.
    event_gap_grace_s: float = 5.0
    #: Seconds between SSE keep-alive comments, so proxies do not close idle streams.
    sse_heartbeat_s: float = 15.0
    #: ``Cache-Control: max-age`` of the latest forecast; clients revalidate with the ETag after.
    forecast_max_age_s: int = 60
    #: A cached latest forecast is re-read after this long even without a ``forecast.ready``
    #: event: a safety net should the event tailer ever fall behind.
    forecast_cache_ttl_s: float = 300.0
    #: Model versions kept loaded for on-demand predictions.
    model_cache_size: int = 8
    #: torch intra-op threads of the API process (set when the first model loads). One is right
    #: for a one-window LSTM forecast: requests run in parallel across worker threads instead,
    #: and on a busy small machine extra intra-op threads spin against each other (measured:
    #: ~60 ms instead of ~2 ms per forecast under load).
    inference_threads: int = 1
    #: How long a prediction waits for the price source before it uses the stored bars.
    source_timeout_s: float = 10.0
    #: After trying to refresh a symbol's prices, wait this long before trying again.
    refresh_cooldown_s: float = 300.0
    #: How long APScheduler keeps the result of an enqueued job.
    job_result_expiration_s: float = 86_400.0

    def __post_init__(self) -> None:
        _check_int("rate_limit_per_minute", self.rate_limit_per_minute, 1, 1_000_000)
        _check_int("default_horizon", self.default_horizon, HORIZON.low, HORIZON.high)
        _check_int("default_lookback", self.default_lookback, LOOKBACK.low, LOOKBACK.high)
        _check_int("forecast_max_age_s", self.forecast_max_age_s, 0, 86_400)
        _check_int("model_cache_size", self.model_cache_size, 1, 1024)
        _check_int("inference_threads", self.inference_threads, 1, 256)
        for name in (
            "event_poll_interval_s",
            "event_gap_grace_s",
            "sse_heartbeat_s",
            "forecast_cache_ttl_s",
            "source_timeout_s",
            "job_result_expiration_s",
        ):
            _check_positive(name, getattr(self, name))
        _check_non_negative("refresh_cooldown_s", self.refresh_cooldown_s)
        if self.mlflow_ui_url is not None and not self.mlflow_ui_url.startswith(
            ("http://", "https://")
        ):
            raise InvalidWebConfigError("mlflow_ui_url", "expected an http(s) URL")


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidWebConfigError(
            name, f"expected an integer from {low} to {high}, got {value!r}"
        )


def _check_positive(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise InvalidWebConfigError(name, f"expected a positive number of seconds, got {value!r}")


def _check_non_negative(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidWebConfigError(name, f"expected zero or more seconds, got {value!r}")
