"""``STOCKCAST_GLOBAL_RETRAIN_CADENCE``: parsed into the node's configuration (``off`` is no
schedule), checked there, and turned into exactly one desired ``retrain_global`` schedule."""

from __future__ import annotations

import pytest

from db.kinds import JobKind
from db.models import RetrainCadence
from forecasting.calendar import DEFAULT_EXCHANGE
from scheduler.config import InvalidSchedulerConfigError, SchedulerConfig
from scheduler.schedules import GLOBAL_RETRAIN_SCHEDULE_ID, desired_schedules, is_managed
from scheduler.triggers import SessionCloseTrigger
from stockcast.commands.scheduler import scheduler_config
from stockcast.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("value", "cadence"),
    [
        (None, None),
        ("off", None),
        ("weekly", RetrainCadence.WEEKLY),
        ("MONTHLY", RetrainCadence.MONTHLY),
    ],
)
def test_the_variable_sets_the_cadence(value: str | None, cadence: RetrainCadence | None) -> None:
    env = {} if value is None else {"STOCKCAST_GLOBAL_RETRAIN_CADENCE": value}
    config = scheduler_config(Settings.from_env(env))
    assert config.global_retrain_cadence is cadence


@pytest.mark.parametrize("value", ["daily", "sometimes"])
def test_other_values_name_the_variable(value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"STOCKCAST_GLOBAL_RETRAIN_CADENCE": value})
    assert caught.value.variable == "STOCKCAST_GLOBAL_RETRAIN_CADENCE"
    assert "expected one of off, weekly, monthly" in str(caught.value)


def test_the_configuration_refuses_a_daily_global_retrain() -> None:
    with pytest.raises(InvalidSchedulerConfigError) as caught:
        SchedulerConfig(
            database_url="sqlite:///x.db",
            source="sample",
            global_retrain_cadence=RetrainCadence.DAILY,
        )
    assert caught.value.name == "global_retrain_cadence"


def test_one_global_schedule_is_desired_only_when_set() -> None:
    off = SchedulerConfig(database_url="sqlite:///x.db", source="sample")
    assert desired_schedules([], off) == []
    on = SchedulerConfig(
        database_url="sqlite:///x.db",
        source="sample",
        global_retrain_cadence=RetrainCadence.WEEKLY,
    )
    [wanted] = desired_schedules([], on)
    assert (wanted.id, wanted.kind, wanted.kwargs) == (
        GLOBAL_RETRAIN_SCHEDULE_ID,
        JobKind.RETRAIN_GLOBAL,
        {"params": {}},
    )
    assert isinstance(wanted.trigger, SessionCloseTrigger)
    assert wanted.trigger.exchange == DEFAULT_EXCHANGE
    assert wanted.signature.startswith(f"{DEFAULT_EXCHANGE}+")
    assert "/weekly;" in wanted.signature
    # A sync owns it (so removes it when unset), and only that id among the unsuffixed ones.
    assert is_managed(GLOBAL_RETRAIN_SCHEDULE_ID)
    assert not is_managed("sync_schedules")
    assert not is_managed("nightly-report")
