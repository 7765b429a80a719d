"""The LSTM forecaster: real (tiny, CPU) training, early stopping, seeding, intervals, errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from forecasting.callbacks import EpochLosses
from forecasting.config import ModelConfig, TrainConfig
from forecasting.forecast import NotFittedError
from forecasting.model import LSTMForecaster
from forecasting.validation import InvalidBarsError
from forecasting.windowing import InsufficientDataError, log_returns_ahead


def test_training_loss_goes_down_on_a_learnable_series(
    synthetic_bars: Callable[..., pd.DataFrame],
    tiny_model_config: ModelConfig,
) -> None:
    bars = synthetic_bars(500)
    train = TrainConfig(
        epochs=8,
        learning_rate=0.01,
        batch_size=32,
        accelerator="cpu",
        max_history=None,
        ensemble=1,
    )
    seen: list[EpochLosses] = []
    model = LSTMForecaster(tiny_model_config, train, epoch_sinks=[seen.append]).fit(bars)
    assert [losses.epoch for losses in seen] == list(range(len(seen)))
    assert seen == list(model.history)
    first, last = model.history[0], model.history[-1]
    assert last.train_loss < 0.5 * first.train_loss
    assert min(h.val_loss for h in model.history) < 0.5 * first.val_loss


def test_predict_before_fit_raises_a_named_error(
    ko_bars: pd.DataFrame, tiny_model_config: ModelConfig
) -> None:
    model = LSTMForecaster(tiny_model_config)
    with pytest.raises(NotFittedError, match="fit"):
        model.predict(ko_bars)
    with pytest.raises(NotFittedError):
        model.predict_log_returns(ko_bars, [50])
    with pytest.raises(NotFittedError, match="saved"):
        model.to_artifact()
    assert not model.fitted


def test_forecast_has_one_step_per_trading_day_with_nested_intervals(
    fitted_lstm: LSTMForecaster, ko_bars: pd.DataFrame
) -> None:
    forecast = fitted_lstm.predict(ko_bars)
    last_day = pd.Timestamp(ko_bars["date"].iloc[-1]).date()
    assert forecast.model_kind == "lstm"
    assert forecast.last_observed_date == last_day
    assert forecast.last_close == ko_bars["close"].iloc[-1]
    assert [s.step for s in forecast.steps] == [1, 2, 3]
    dates = [s.target_date for s in forecast.steps]
    assert dates == sorted(dates)
    assert dates[0] > last_day
    assert all(d.weekday() < 5 for d in dates)
    for step in forecast.steps:
        assert step.naive == forecast.last_close
        assert 0 < step.lower_95 < step.lower_80 < step.point < step.upper_80 < step.upper_95
    payload = forecast.to_dict()
    assert payload["steps"][0]["target_date"] == dates[0].isoformat()


def test_intervals_come_from_validation_residuals(
    fitted_lstm: LSTMForecaster, ko_bars: pd.DataFrame
) -> None:
    """The reference half-widths are the split-conformal quantiles of the validation residuals."""
    summary = fitted_lstm.summary
    assert summary is not None
    n_val = summary.val_windows
    origins = fitted_lstm.validation_rows()
    assert origins.size == n_val
    actual = log_returns_ahead(ko_bars["close"].to_numpy(), origins, 3)
    residuals = np.sort(np.abs(actual - fitted_lstm.predict_log_returns(ko_bars, origins)), axis=0)
    rank = math.ceil((n_val + 1) * 0.8)
    np.testing.assert_array_equal(fitted_lstm.quantiles[0.8], residuals[rank - 1])
    assert np.all(fitted_lstm.quantiles[0.95] >= fitted_lstm.quantiles[0.8])


def test_best_epoch_weights_are_kept(fitted_lstm: LSTMForecaster) -> None:
    summary = fitted_lstm.summary
    assert summary is not None
    best = min(fitted_lstm.history, key=lambda h: h.val_loss)
    assert summary.best_epoch == best.epoch
    assert summary.best_val_loss == pytest.approx(best.val_loss)
    assert summary.device == "cpu"
    assert summary.rows == 400


def test_same_seed_gives_the_same_model(
    ko_bars: pd.DataFrame,
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
    fitted_lstm: LSTMForecaster,
) -> None:
    again = LSTMForecaster(tiny_model_config, tiny_train_config).fit(ko_bars)
    for name, tensor in fitted_lstm.predictor.state_dict().items():
        assert torch.equal(tensor, again.predictor.state_dict()[name]), name


def test_early_stopping_stops_before_max_epochs(
    ko_bars: pd.DataFrame, tiny_model_config: ModelConfig
) -> None:
    # A huge learning rate makes validation loss worsen quickly; patience 1 must stop the fit.
    train = TrainConfig(
        epochs=40, patience=1, learning_rate=0.5, accelerator="cpu", max_history=None, ensemble=1
    )
    model = LSTMForecaster(tiny_model_config, train).fit(ko_bars)
    assert model.summary is not None
    assert model.summary.stopped_early
    assert len(model.history) < 40


def test_max_history_keeps_the_most_recent_rows(
    ko_bars_long: pd.DataFrame, tiny_model_config: ModelConfig
) -> None:
    train = TrainConfig(epochs=1, accelerator="cpu", max_history=300, ensemble=1)
    model = LSTMForecaster(tiny_model_config, train).fit(ko_bars_long)
    assert model.summary is not None
    assert model.summary.rows == 300
    assert model.summary.data_end == pd.Timestamp(ko_bars_long["date"].iloc[-1]).date().isoformat()
    expected_start = pd.Timestamp(ko_bars_long["date"].iloc[-300]).date()
    assert date.fromisoformat(model.summary.data_start) == expected_start


def test_too_few_rows_says_how_many_are_needed(
    ko_bars: pd.DataFrame, tiny_model_config: ModelConfig, tiny_train_config: TrainConfig
) -> None:
    with pytest.raises(InsufficientDataError, match=r"needs at least \d+ rows") as info:
        LSTMForecaster(tiny_model_config, tiny_train_config).fit(ko_bars.head(60))
    assert info.value.got == 60
    assert info.value.needed > 60


def test_bad_rows_are_refused(
    ko_bars: pd.DataFrame, tiny_model_config: ModelConfig, tiny_train_config: TrainConfig
) -> None:
    broken = ko_bars.copy()
    broken.loc[100, "close"] = -1.0
    with pytest.raises(InvalidBarsError):
        LSTMForecaster(tiny_model_config, tiny_train_config).fit(broken)


def test_training_writes_no_files(
    ko_bars: pd.DataFrame,
    tiny_model_config: ModelConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No lightning_logs/ or checkpoints: artifacts are written only where we ask."""
    monkeypatch.chdir(tmp_path)
    train = TrainConfig(epochs=1, accelerator="cpu", max_history=None, ensemble=1)
    LSTMForecaster(tiny_model_config, train).fit(ko_bars)
    assert list(tmp_path.iterdir()) == []


def test_hardware_is_sampled_during_training(fitted_lstm: LSTMForecaster) -> None:
    hardware = fitted_lstm.hardware
    assert hardware["samples"] is not None and hardware["samples"] >= 1
    assert hardware["process_rss_mb_max"] is not None and hardware["process_rss_mb_max"] > 0
    assert bool(hardware["gpu_available"]) == torch.cuda.is_available()


def test_the_calibration_split_is_last_purged_and_untouched_by_training(
    fitted_lstm: LSTMForecaster,
    ko_bars: pd.DataFrame,
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
) -> None:
    """Train | validation | calibration in time order with H-1 origins purged between parts; no
    training decision (weights, early stopping, the best epoch) reads the calibration windows:
    rewriting every price after the first calibration origin leaves the model unchanged."""
    train, val, cal = (
        fitted_lstm.training_rows(),
        fitted_lstm.validation_rows(),
        fitted_lstm.calibration_rows(),
    )
    horizon = tiny_model_config.horizon
    assert val[0] - train[-1] == horizon and cal[0] - val[-1] == horizon
    assert cal[-1] == len(ko_bars) - 1 - horizon
    assert cal.size == math.ceil((len(ko_bars) - 10 - horizon) * 0.15)
    changed = ko_bars.copy()
    for column in ("open", "high", "low", "close"):
        changed.loc[int(cal[0]) + 1 :, column] *= 1.3
    again = LSTMForecaster(tiny_model_config, tiny_train_config).fit(changed)
    for name, tensor in fitted_lstm.predictor.state_dict().items():
        assert torch.equal(tensor, again.predictor.state_dict()[name]), name
    assert again.history == fitted_lstm.history


def test_the_student_t_head_gives_a_positive_scale_per_step(
    fitted_lstm: LSTMForecaster, ko_bars: pd.DataFrame
) -> None:
    origins = np.arange(20, 40)
    location, deviation = fitted_lstm.predict_distribution(ko_bars, origins)
    assert deviation is not None and deviation.shape == location.shape == (20, 3)
    assert (deviation > 0).all()
    assert np.array_equal(location, fitted_lstm.predict_log_returns(ko_bars, origins))


def test_an_ensemble_averages_its_seeds_and_reloads_exactly(
    ko_bars: pd.DataFrame, tiny_model_config: ModelConfig, tiny_train_config: TrainConfig
) -> None:
    from dataclasses import replace

    from forecasting.predictor import LSTMPredictor

    model = LSTMForecaster(tiny_model_config, replace(tiny_train_config, ensemble=2)).fit(ko_bars)
    origins = np.arange(20, 30)
    members = model.predictor.predict_members(ko_bars, origins)
    assert members.shape == (2, 10, 3)
    assert not np.array_equal(members[0], members[1])  # different seeds, different networks
    location, deviation = model.predict_distribution(ko_bars, origins)
    np.testing.assert_allclose(location, members.mean(axis=0), rtol=1e-12)
    assert deviation is not None and (deviation > 0).all()
    artifact = model.to_artifact(symbol="KO")
    assert artifact.metadata["network"]["members"] == 2
    reloaded = LSTMPredictor.from_artifact(artifact)
    assert np.array_equal(reloaded.predict_log_returns(ko_bars, origins), location)
    assert model.summary is not None and model.summary.members == 2
