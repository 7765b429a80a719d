"""Settings: defaults, parsing, and a bad value naming its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecasting.promotion import PromotionPolicy
from stockcast.settings import Settings, SettingsError


def test_defaults_put_everything_under_the_data_dir() -> None:
    settings = Settings.from_env({})
    assert settings.data_dir == Path("var")
    assert settings.database_url == "sqlite:///var/stockcast.db"
    assert settings.mlflow_tracking_uri == "sqlite:///var/mlflow.db"
    assert settings.mlflow_artifact_root == (Path("var") / "mlartifacts").resolve().as_uri()
    assert settings.source == "yfinance"
    assert settings.api_keys == ()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.promotion_policy is PromotionPolicy.EVIDENCE
    assert settings.is_sqlite


def test_data_dir_moves_the_default_database(tmp_path: Path) -> None:
    settings = Settings.from_env({"STOCKCAST_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path.as_posix()}/stockcast.db"


def test_values_are_parsed(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "STOCKCAST_DATABASE_URL": "postgresql://app@db:5432/stockcast",
            "STOCKCAST_MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "STOCKCAST_SOURCE": f"csv:{tmp_path}",
            "STOCKCAST_API_KEYS": "k" * 20 + " , " + "j" * 16,
            "STOCKCAST_PORT": "9000",
            "STOCKCAST_PROMOTION_POLICY": "always",
            "STOCKCAST_LOG_LEVEL": "debug",
        }
    )
    assert not settings.is_sqlite
    assert settings.mlflow_artifact_root is None  # a tracking server owns its artifact store
    assert settings.source == f"csv:{tmp_path}"
    assert settings.api_keys == ("k" * 20, "j" * 16)
    assert settings.port == 9000
    assert settings.promotion_policy is PromotionPolicy.ALWAYS
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("STOCKCAST_DATABASE_URL", "mysql://root@localhost/x", "unsupported database"),
        ("STOCKCAST_DATABASE_URL", "not a url", "not a database URL"),
        ("STOCKCAST_DATABASE_URL", "sqlite://", "needs a file path"),
        ("STOCKCAST_DATABASE_URL", "postgresql://host", "must name a database"),
        ("STOCKCAST_SOURCE", "bloomberg", "expected yfinance, csv:DIR or sample"),
        ("STOCKCAST_MLFLOW_TRACKING_URI", "file:///tmp/mlruns", "file store takes no new runs"),
        ("STOCKCAST_MLFLOW_TRACKING_URI", "./mlruns", "file store takes no new runs"),
        ("STOCKCAST_SOURCE", "csv:/definitely/not/here", "does not exist"),
        ("STOCKCAST_API_KEYS", "short", "at least 16 characters"),
        ("STOCKCAST_PORT", "70000", "from 1 to 65535"),
        ("STOCKCAST_PORT", "eighty", "expected an integer"),
        ("STOCKCAST_PROMOTION_POLICY", "sometimes", "expected one of evidence, beat_champion"),
        ("STOCKCAST_PROMOTION_POLICY", "not_worse_than_naive", "retired"),
        ("STOCKCAST_REQUIRE_KEY_FOR_READS", "maybe", "expected true or false"),
        ("STOCKCAST_SCHEDULER_ROLE", "boss", "expected one of both, scheduler, worker"),
        ("STOCKCAST_REPLAY", "sometimes", "expected one of auto, on, off"),
        ("STOCKCAST_REPLAY_SESSIONS", "0", "from 1 to 100000"),
        ("STOCKCAST_REPLAY_STEP_SECONDS", "nan", "from 0.1 to 3600"),
        ("STOCKCAST_REPLAY_STEP_SECONDS", "fast", "expected a number"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert fragment in message
    assert "\n" not in message


def test_a_file_store_is_taken_when_mlflow_is_told_to_allow_it() -> None:
    env = {"STOCKCAST_MLFLOW_TRACKING_URI": "file:///tmp/mlruns"}
    with pytest.raises(SettingsError):
        Settings.from_env(env)
    allowed = Settings.from_env({**env, "MLFLOW_ALLOW_FILE_STORE": "true"})
    assert allowed.mlflow_tracking_uri == "file:///tmp/mlruns"


def test_the_replay_is_automatic_and_its_pace_is_read() -> None:
    defaults = Settings.from_env({})
    assert (defaults.replay, defaults.replay_sessions, defaults.replay_step_seconds) == (
        "auto",
        60,
        5.0,
    )
    settings = Settings.from_env(
        {
            "STOCKCAST_REPLAY": "OFF",
            "STOCKCAST_REPLAY_SESSIONS": "250",
            "STOCKCAST_REPLAY_STEP_SECONDS": "0.5",
        }
    )
    assert (settings.replay, settings.replay_sessions, settings.replay_step_seconds) == (
        "off",
        250,
        0.5,
    )
