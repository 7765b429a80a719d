"""Naive and drift baselines: their forecasts, their own conformal intervals, and the naive
fallback predictor for symbols without a champion."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from forecasting.baselines import DriftForecaster, NaiveForecaster
from forecasting.forecast import NotFittedError
from forecasting.predictor import NaivePredictor
from forecasting.windowing import log_returns_ahead, split_origins


def test_naive_forecasts_the_last_close(ko_bars: pd.DataFrame) -> None:
    model = NaiveForecaster(horizon=3).fit(ko_bars)
    forecast = model.predict(ko_bars)
    last = float(ko_bars["close"].iloc[-1])
    assert forecast.model_kind == "naive"
    assert [s.point for s in forecast.steps] == [last, last, last]
    assert np.array_equal(model.predict_log_returns(ko_bars, [50, 60]), np.zeros((2, 3)))


def test_naive_intervals_are_conformal_quantiles_of_its_own_errors(ko_bars: pd.DataFrame) -> None:
    model = NaiveForecaster(horizon=3, lookback=10, val_fraction=0.15).fit(ko_bars)
    split = split_origins(len(ko_bars), lookback=10, horizon=3, val_fraction=0.15)
    errors = np.abs(log_returns_ahead(ko_bars["close"].to_numpy(), split.validation, 3))
    n = split.validation.size
    for level in (0.8, 0.95):
        rank = math.ceil((n + 1) * level)
        expected = np.sort(errors, axis=0)[rank - 1]
        np.testing.assert_array_equal(model.quantiles[level], expected)
    # Uncertainty grows with the horizon for a random walk.
    assert model.quantiles[0.8][2] > model.quantiles[0.8][0]


def test_drift_uses_the_mean_log_return_before_validation(ko_bars: pd.DataFrame) -> None:
    model = DriftForecaster(horizon=3, lookback=10, val_fraction=0.15).fit(ko_bars)
    split = split_origins(len(ko_bars), lookback=10, horizon=3, val_fraction=0.15)
    close = ko_bars["close"].to_numpy()
    end = int(split.validation[0])
    slope = np.log(close[end] / close[0]) / end
    assert model.slope == pytest.approx(slope, rel=1e-12)
    np.testing.assert_allclose(model.predict_log_returns(ko_bars, [5])[0], slope * np.arange(1, 4))
    forecast = model.predict(ko_bars)
    assert forecast.steps[2].point == pytest.approx(close[-1] * math.exp(3 * slope))
    assert forecast.steps[2].naive == close[-1]


def test_max_history_limits_the_drift_estimate(ko_bars_long: pd.DataFrame) -> None:
    model = DriftForecaster(horizon=3, max_history=300).fit(ko_bars_long)
    tail = ko_bars_long["close"].to_numpy()[-300:]
    split = split_origins(300, lookback=1, horizon=3, val_fraction=0.15)
    end = int(split.validation[0])
    assert model.slope == pytest.approx(np.log(tail[end] / tail[0]) / end, rel=1e-12)


def test_baselines_refuse_to_predict_before_fit(ko_bars: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError):
        NaiveForecaster(horizon=2).predict(ko_bars)
    with pytest.raises(NotFittedError):
        DriftForecaster(horizon=2).slope  # noqa: B018


def test_naive_fallback_forecasts_even_with_very_little_history(ko_bars: pd.DataFrame) -> None:
    """A symbol with almost no history still gets a forecast; unbounded intervals are null."""
    short = ko_bars.head(3)
    forecast = NaivePredictor.from_bars(short, horizon=5).predict(short)
    assert len(forecast.steps) == 5
    payload = forecast.to_dict()
    assert payload["model_kind"] == "naive"
    assert payload["steps"][0]["upper_95"] is None
    assert payload["steps"][0]["point"] == short["close"].iloc[-1]


def test_naive_fallback_with_enough_history_has_finite_intervals(ko_bars: pd.DataFrame) -> None:
    predictor = NaivePredictor.from_bars(ko_bars, horizon=5)
    forecast = predictor.predict(ko_bars)
    for step in forecast.steps:
        assert 0 < step.lower_95 < step.lower_80 < step.point < step.upper_80 < step.upper_95


def test_target_dates_skip_the_weekend_and_a_holiday(ko_bars: pd.DataFrame) -> None:
    """Bars ending on Friday 2024-08-30: the next sessions skip Labor Day (Monday 2 September)."""
    dates = pd.to_datetime(ko_bars["date"])
    upto = ko_bars[dates <= pd.Timestamp("2024-08-30")]
    assert pd.Timestamp(upto["date"].iloc[-1]).date() == date(2024, 8, 30)
    forecast = NaivePredictor.from_bars(upto, horizon=2).predict(upto)
    assert [s.target_date for s in forecast.steps] == [date(2024, 9, 3), date(2024, 9, 4)]
