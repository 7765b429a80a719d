"""A retrain job's configurations: its parameters over the symbol's settings over the worker's
defaults, every range checked by the forecasting configurations (``forecasting.limits``)."""

from __future__ import annotations

import pytest

from db.contracts import RetrainParams
from forecasting.config import InvalidConfigError, ModelConfig, TrainConfig
from scheduler.config import TrainingDefaults
from scheduler.retrain import training_configs

DEFAULTS = TrainingDefaults(
    model=ModelConfig(hidden_size=16), train=TrainConfig(epochs=20), initial_epochs=3
)


def test_parameters_win_over_the_symbol_which_wins_over_the_defaults() -> None:
    model, train, backtest = training_configs(
        RetrainParams(horizon=7, epochs=12), horizon=3, lookback=40, defaults=DEFAULTS
    )
    assert (model.horizon, model.lookback, model.hidden_size) == (7, 40, 16)
    assert (train.epochs, train.batch_size) == (12, DEFAULTS.train.batch_size)
    assert backtest.folds == DEFAULTS.backtest.folds


def test_the_first_training_is_short() -> None:
    _, train, backtest = training_configs(
        RetrainParams(initial=True), horizon=3, lookback=40, defaults=DEFAULTS
    )
    assert train.epochs == 3
    assert backtest.folds == DEFAULTS.initial_folds


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (RetrainParams(epochs=0), "TrainConfig.epochs"),
        (RetrainParams(epochs=501), "TrainConfig.epochs"),
        (RetrainParams(horizon=0), "ModelConfig.horizon"),
        (RetrainParams(batch_size=5000), "TrainConfig.batch_size"),
        (RetrainParams(horizon=31), "ModelConfig.horizon"),
        (RetrainParams(lookback=4), "ModelConfig.lookback"),
        (RetrainParams(folds=21), "BacktestConfig.folds"),
    ],
)
def test_out_of_range_parameters_are_refused_naming_the_field(
    params: RetrainParams, field: str
) -> None:
    with pytest.raises(InvalidConfigError, match=field):
        training_configs(params, horizon=3, lookback=40, defaults=DEFAULTS)


def test_the_global_fit_samples_its_epochs_and_caps_them_unless_told() -> None:
    from db.contracts import RetrainGlobalParams
    from forecasting.limits import GLOBAL_EPOCHS, WINDOWS_PER_EPOCH
    from scheduler.global_retrain import global_configs

    _, train, _ = global_configs(RetrainGlobalParams(), DEFAULTS)
    assert train.epochs == min(DEFAULTS.train.epochs, GLOBAL_EPOCHS) == GLOBAL_EPOCHS
    assert train.windows_per_epoch == WINDOWS_PER_EPOCH.default
    assert train.ensemble == DEFAULTS.train.ensemble  # the rest is the worker's
    _, told, _ = global_configs(RetrainGlobalParams(epochs=40, windows_per_epoch=4096), DEFAULTS)
    assert (told.epochs, told.windows_per_epoch) == (40, 4096)
    short = TrainingDefaults(train=TrainConfig(epochs=4))
    assert global_configs(RetrainGlobalParams(), short)[1].epochs == 4
