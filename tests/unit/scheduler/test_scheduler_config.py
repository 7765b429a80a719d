"""The node's configuration refuses values that would misbehave later, naming the setting."""

from __future__ import annotations

import pytest
from tenacity import RetryCallState

from scheduler.config import (
    InvalidSchedulerConfigError,
    RetryPolicy,
    SchedulerConfig,
    TaskLimits,
    TrainingDefaults,
)


def _config(**overrides: object) -> SchedulerConfig:
    values: dict[str, object] = {"database_url": "sqlite:///x.db", "source": "sample"}
    values.update(overrides)
    return SchedulerConfig(**values)  # type: ignore[arg-type]


def test_backoff_grows_exponentially_and_is_capped() -> None:
    retry = RetryPolicy(max_attempts=6, initial_delay=2.0, multiplier=3.0, max_delay=30.0)
    wait = retry.wait()
    delays = []
    for failed_attempt in range(1, 6):
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = failed_attempt
        delays.append(wait(state))
    assert delays == [2.0, 6.0, 18.0, 30.0, 30.0]


def test_polling_is_frequent_on_sqlite_and_a_safety_net_on_postgresql() -> None:
    assert _config().effective_poll_interval == 2.0
    assert _config(database_url="postgresql://h/db").effective_poll_interval == 30.0
    assert _config(poll_interval=0.5).effective_poll_interval == 0.5


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"role": "boss"}, "role"),
        ({"max_concurrent_jobs": 0}, "max_concurrent_jobs"),
        ({"train_concurrency": 65}, "train_concurrency"),
        ({"lease_duration": 0}, "lease_duration"),
        ({"cleanup_interval": -1}, "cleanup_interval"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"ingest_delay": -5}, "ingest_delay"),
        ({"backfill_years": 0}, "backfill_years"),
        ({"job_timeouts": {"ingest": 0}}, "job_timeouts[ingest]"),
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, object], name: str) -> None:
    with pytest.raises(InvalidSchedulerConfigError) as caught:
        _config(**overrides)
    assert caught.value.name == name


def test_nested_settings_validate_themselves() -> None:
    with pytest.raises(InvalidSchedulerConfigError, match=r"retry\.max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(InvalidSchedulerConfigError, match=r"limits\.ingest"):
        TaskLimits(ingest=0)
    with pytest.raises(InvalidSchedulerConfigError, match=r"training\.initial_epochs"):
        TrainingDefaults(initial_epochs=0)
    with pytest.raises(InvalidSchedulerConfigError, match=r"training\.train"):
        TrainingDefaults(train={"epochs": 3})  # type: ignore[arg-type]
