"""What the API process is configured with, handed over by the composition root."""

from __future__ import annotations

from dataclasses import dataclass


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
    default_horizon: int = 5
    default_lookback: int = 60
    title: str = "stockcast"
    version: str = "0.1.0"
