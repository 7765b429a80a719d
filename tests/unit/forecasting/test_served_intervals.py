"""The LSTM's served intervals: a scale model and an adaptive calibration state stored in the
artifact, so ``predict(bars)`` makes volatility-adaptive intervals from the artifact alone, and an
artifact made before them keeps its split-conformal half-widths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.artifacts import ModelArtifact
from forecasting.candidates import IntervalRecipe
from forecasting.config import ModelConfig, TrainConfig
from forecasting.conformal import CalibrationState
from forecasting.model import LSTMForecaster
from forecasting.predictor import LSTMPredictor
from forecasting.volatility import EwmaScale


def _shock(bars: pd.DataFrame, moves: list[float]) -> pd.DataFrame:
    from forecasting.bars import conform_bars

    last = float(bars["close"].iloc[-1])
    closes = last * np.exp(np.cumsum(moves))
    start = pd.Timestamp(bars["date"].iloc[-1]) + pd.Timedelta(days=1)
    extra = pd.DataFrame(
        {
            "date": pd.bdate_range(start, periods=len(moves)),
            "open": closes,
            "high": closes * 1.002,
            "low": closes * 0.998,
            "close": closes,
            "volume": float(bars["volume"].iloc[-1]),
        }
    )
    return conform_bars(pd.concat([bars, extra], ignore_index=True))


@pytest.fixture(scope="module")
def served(fitted_lstm: LSTMForecaster, ko_bars: pd.DataFrame) -> LSTMPredictor:
    """The fixture LSTM serving EWMA-normalised intervals calibrated on its calibration split."""
    rows = fitted_lstm.calibration_rows()
    closes = ko_bars["close"].to_numpy()
    actual = np.log(closes[rows[:, None] + np.arange(1, 4)] / closes[rows][:, None])
    scores = np.abs(actual - fitted_lstm.predict_log_returns(ko_bars, rows)) / EwmaScale().sigma(
        closes, rows, 3
    )
    recipe = IntervalRecipe(
        scale_kind="ewma", scale=EwmaScale(), state=CalibrationState.initial(scores)
    )
    return fitted_lstm.predictor.with_intervals(recipe)


def _width(predictor: LSTMPredictor, bars: pd.DataFrame) -> float:
    step = predictor.predict(bars).steps[0]
    return float(np.log(step.upper_80 / step.lower_80))


def test_a_volatility_shock_widens_the_lstms_next_interval_and_calm_narrows_it(
    served: LSTMPredictor, ko_bars: pd.DataFrame
) -> None:
    before = _width(served, ko_bars)
    shocked = _shock(ko_bars, [0.05, -0.06, 0.06, -0.05, 0.05])
    assert _width(served, shocked) > 1.8 * before
    calm = _shock(shocked, [0.001 * (-1) ** k for k in range(60)])
    assert _width(served, calm) < 0.6 * _width(served, shocked)


def test_the_recipe_travels_in_the_artifact_and_predicts_identically(
    fitted_lstm: LSTMForecaster, served: LSTMPredictor, ko_bars: pd.DataFrame
) -> None:
    model = LSTMForecaster.from_artifact(fitted_lstm.to_artifact(symbol="KO"))
    assert served.intervals is not None
    model.set_intervals(served.intervals)
    artifact = model.to_artifact(symbol="KO")
    again = LSTMPredictor.from_artifact(
        ModelArtifact(weights=artifact.weights, metadata=artifact.metadata)
    )
    assert again.intervals == served.intervals
    assert again.predict(ko_bars) == served.predict(ko_bars)
    # the served intervals differ from the split-conformal reference the artifact also keeps
    assert again.predict(ko_bars) != fitted_lstm.predict(ko_bars)


def test_an_artifact_without_a_recipe_serves_its_split_conformal_half_widths(
    fitted_lstm: LSTMForecaster, ko_bars: pd.DataFrame
) -> None:
    artifact = fitted_lstm.to_artifact(symbol="KO")
    assert "intervals" not in artifact.metadata
    predictor = LSTMPredictor.from_artifact(artifact)
    forecast = predictor.predict(ko_bars)
    last = float(ko_bars["close"].iloc[-1])
    location = predictor.predict_log_returns(ko_bars, [len(ko_bars) - 1])[0]
    expected = last * np.exp(location + predictor.quantiles[0.8])
    np.testing.assert_allclose([s.upper_80 for s in forecast.steps], expected, rtol=1e-12)


def test_a_point_head_artifact_from_before_the_student_t_head_still_loads(
    ko_bars: pd.DataFrame, tiny_train_config: TrainConfig
) -> None:
    old_config = ModelConfig(
        lookback=10, horizon=3, hidden_size=8, num_layers=1, dropout=0.0, head="point"
    )
    old = LSTMForecaster(old_config, tiny_train_config).fit(ko_bars)
    artifact = old.to_artifact(symbol="KO")
    metadata = dict(artifact.metadata)
    metadata["network"] = {
        k: v for k, v in metadata["network"].items() if k not in ("head", "members")
    }
    metadata["model_config"] = {k: v for k, v in metadata["model_config"].items() if k != "head"}
    reloaded = LSTMPredictor.from_artifact(
        ModelArtifact(weights=artifact.weights, metadata=metadata)
    )
    assert reloaded.spec.head == "point"
    location, deviation = reloaded.predict_distribution(ko_bars, [100, 101])
    assert deviation is None
    assert np.array_equal(location, old.predict_log_returns(ko_bars, [100, 101]))


def test_the_network_can_serve_a_naive_forecast_with_its_volatility(
    fitted_lstm: LSTMForecaster, ko_bars: pd.DataFrame
) -> None:
    """``naive+lstm_t``: the last close as point forecast, the Student-t head's scale for width,
    labelled as what it is."""
    state = CalibrationState.initial(np.full((30, 3), 1.0))
    recipe = IntervalRecipe(scale_kind="lstm_t", scale=None, state=state, point="naive")
    predictor = fitted_lstm.predictor.with_intervals(recipe)
    forecast = predictor.predict(ko_bars)
    assert forecast.model_kind == "naive+lstm_t"
    last = float(ko_bars["close"].iloc[-1])
    _, deviation = predictor.predict_distribution(ko_bars, [len(ko_bars) - 1])
    assert deviation is not None
    for h, step in enumerate(forecast.steps):
        assert step.point == pytest.approx(last)
        assert step.upper_80 == pytest.approx(last * np.exp(deviation[0, h]))
    with pytest.raises(ValueError, match="do not match"):
        IntervalRecipe(scale_kind="lstm_t", scale=EwmaScale(), state=state)
