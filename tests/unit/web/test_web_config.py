"""``WebConfig`` refuses values the API cannot work with, naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from web.config import InvalidWebConfigError, WebConfig


def _config(**changes: Any) -> WebConfig:
    return WebConfig(database_url="sqlite:////tmp/x.db", expected_revision="0001", **changes)


def test_defaults_are_valid() -> None:
    config = _config()
    assert config.rate_limit_per_minute == 30
    assert config.mlflow_ui_url is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rate_limit_per_minute", 0),
        ("default_horizon", 31),
        ("default_lookback", 4),
        ("forecast_max_age_s", -1),
        ("model_cache_size", 0),
        ("inference_threads", 0),
        ("event_poll_interval_s", 0),
        ("sse_heartbeat_s", float("inf")),
        ("source_timeout_s", -2.0),
        ("refresh_cooldown_s", float("nan")),
        ("mlflow_ui_url", "mlflow:5000"),
        ("default_horizon", True),
    ],
)
def test_out_of_range_values_are_refused(field: str, value: Any) -> None:
    with pytest.raises(InvalidWebConfigError, match=field):
        _config(**{field: value})


def test_the_cli_links_models_to_an_mlflow_server_only() -> None:
    from stockcast.commands.service import web_config
    from stockcast.settings import Settings

    base = {"STOCKCAST_DATABASE_URL": "sqlite:////tmp/x.db", "STOCKCAST_SOURCE": "sample"}
    remote = Settings.from_env({**base, "STOCKCAST_MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    local = Settings.from_env(base)
    assert web_config(remote).mlflow_ui_url == "http://mlflow:5000"
    assert web_config(local).mlflow_ui_url is None
