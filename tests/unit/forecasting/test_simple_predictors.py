"""The simple predictors: the naive fallback with EWMA-normalised adaptive intervals calibrated on
the symbol's own history, and a simple candidate served from an artifact's ``serving`` block."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from forecasting.bars import conform_bars
from forecasting.candidates import IntervalRecipe
from forecasting.conformal import CalibrationState
from forecasting.predictor import NaivePredictor, SimplePredictor
from forecasting.volatility import EwmaScale


def test_naive_fallback_forecasts_even_with_very_little_history(ko_bars: pd.DataFrame) -> None:
    """A symbol with almost no history still gets a forecast; unbounded intervals are null."""
    short = ko_bars.head(3)
    forecast = NaivePredictor.from_bars(short, horizon=5).predict(short)
    assert len(forecast.steps) == 5
    payload = forecast.to_dict()
    assert payload["model_kind"] == "naive"
    assert payload["steps"][0]["upper_95"] is None
    assert payload["steps"][0]["point"] == short["close"].iloc[-1]


def test_naive_fallback_with_enough_history_has_finite_nested_intervals(
    ko_bars: pd.DataFrame,
) -> None:
    predictor = NaivePredictor.from_bars(ko_bars, horizon=5)
    forecast = predictor.predict(ko_bars)
    widths = []
    for step in forecast.steps:
        assert 0 < step.lower_95 < step.lower_80 < step.point < step.upper_80 < step.upper_95
        widths.append(step.upper_80 - step.lower_80)
    assert widths == sorted(widths)  # further ahead, wider
    # the online state has seen every matured origin of the history
    assert predictor.intervals.state.matured > 0


def test_target_dates_skip_the_weekend_and_a_holiday(ko_bars: pd.DataFrame) -> None:
    """Bars ending on Friday 2017-09-01: the next sessions skip Labor Day (Monday 4 September)."""
    dates = pd.to_datetime(ko_bars["date"])
    upto = ko_bars[dates <= pd.Timestamp("2017-09-01")]
    assert pd.Timestamp(upto["date"].iloc[-1]).date() == date(2017, 9, 1)
    forecast = NaivePredictor.from_bars(upto, horizon=2).predict(upto)
    assert [s.target_date for s in forecast.steps] == [date(2017, 9, 5), date(2017, 9, 6)]


def _extend(bars: pd.DataFrame, returns: list[float]) -> pd.DataFrame:
    """``bars`` followed by business days whose closes move by the given log returns."""
    last = float(bars["close"].iloc[-1])
    closes = last * np.exp(np.cumsum(returns))
    dates = pd.bdate_range(
        pd.Timestamp(bars["date"].iloc[-1]) + pd.Timedelta(days=1), periods=len(returns)
    )
    extra = pd.DataFrame(
        {
            "date": dates,
            "open": closes,
            "high": closes * 1.001,
            "low": closes * 0.999,
            "close": closes,
            "volume": 1_000_000.0,
        }
    )
    return conform_bars(pd.concat([bars, extra], ignore_index=True))


def _width(bars: pd.DataFrame) -> float:
    step = NaivePredictor.from_bars(bars, horizon=5).predict(bars).steps[0]
    return float(np.log(step.upper_80 / step.lower_80))


def test_a_volatility_shock_widens_the_next_interval_and_calm_narrows_it(
    ko_bars: pd.DataFrame,
) -> None:
    """What the forecast job serves from the stored prices follows the market's nervousness."""
    before = _width(ko_bars)
    shocked = _extend(ko_bars, [0.06, -0.07, 0.05, -0.06, 0.07])
    after_shock = _width(shocked)
    assert after_shock > 1.8 * before
    calm = _extend(shocked, [0.001 * (-1) ** k for k in range(60)])
    after_calm = _width(calm)
    assert after_calm < 0.6 * after_shock


def test_a_simple_candidate_is_served_from_its_serving_block(ko_bars: pd.DataFrame) -> None:
    state = CalibrationState.initial(np.full((30, 3), 1.0))
    recipe = IntervalRecipe(
        scale_kind="ewma", scale=EwmaScale(), state=state, point="drift", slope=0.001
    )
    serving = {"selected": "drift+ewma", "intervals": recipe.to_dict()}
    predictor = SimplePredictor.from_serving(serving, horizon=3)
    forecast = predictor.predict(ko_bars)
    last = float(ko_bars["close"].iloc[-1])
    closes = ko_bars["close"].to_numpy()
    sigma = EwmaScale().sigma(closes, [len(closes) - 1], 3)[0]
    for h, step in enumerate(forecast.steps, start=1):
        assert step.point == pytest.approx(last * np.exp(0.001 * h))
        # every score is 1, so every level's half-width is one scale forecast
        assert step.upper_80 == pytest.approx(last * np.exp(0.001 * h + sigma[h - 1]))
        assert step.naive == last
    assert forecast.model_kind == "drift+ewma"  # the candidate, not the bare fallback
