"""``STOCKCAST_REFRESH_BATCH_CONCURRENCY``: parsed into the node's configuration, where it is the
node limit of ``refresh_batch`` jobs; a bad value names the variable and starts nothing."""

from __future__ import annotations

import pytest

from scheduler.config import InvalidSchedulerConfigError, SchedulerConfig
from stockcast.commands.scheduler import scheduler_config
from stockcast.settings import Settings, SettingsError

VARIABLE = "STOCKCAST_REFRESH_BATCH_CONCURRENCY"


@pytest.mark.parametrize(("value", "expected"), [(None, 4), ("1", 1), ("3", 3), ("64", 64)])
def test_the_variable_sets_the_node_limit(value: str | None, expected: int) -> None:
    env = {} if value is None else {VARIABLE: value}
    assert scheduler_config(Settings.from_env(env)).refresh_batch_concurrency == expected


@pytest.mark.parametrize("value", ["0", "65", "-1", "two", "1.5"])
def test_bad_values_name_the_variable(value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({VARIABLE: value})
    assert caught.value.variable == VARIABLE


@pytest.mark.parametrize("value", [0, 65, True])
def test_the_configuration_checks_it_too(value: object) -> None:
    with pytest.raises(InvalidSchedulerConfigError, match="refresh_batch_concurrency"):
        SchedulerConfig(
            database_url="sqlite://",
            source="sample",
            refresh_batch_concurrency=value,  # type: ignore[arg-type]
        )
