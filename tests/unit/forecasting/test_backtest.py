"""Walk-forward backtest: same windows for every model, figures checked against independent
computations, no look-ahead, fit-once and champion modes, and the plot."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import BacktestReport, walk_forward
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.model import LSTMForecaster
from forecasting.plots import backtest_png
from forecasting.windowing import InsufficientDataError

REQUIRED = (
    "mase",
    "theil_u2",
    "directional_accuracy",
    "coverage_80",
    "coverage_95",
    "rmse",
    "mae",
    "mape",
    "r2",
)
BACKTEST = BacktestConfig(folds=2, test_size=30)


@pytest.fixture(scope="module")
def report(
    ko_bars: pd.DataFrame, tiny_model_config: ModelConfig, tiny_train_config: TrainConfig
) -> BacktestReport:
    return walk_forward(
        ko_bars,
        model_config=tiny_model_config,
        train_config=tiny_train_config,
        backtest_config=BACKTEST,
    )


def test_report_has_every_model_and_figure_as_json(report: BacktestReport) -> None:
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    for model in ("lstm", "naive", "drift"):
        for key in REQUIRED:
            assert isinstance(payload[model][key], float), (model, key)
        assert [s["step"] for s in payload[model]["per_step"]] == [1.0, 2.0, 3.0]
    assert payload["windows"] == 60
    assert set(payload["dm"]) >= {"statistic", "p_value", "p_value_lstm_worse", "per_step"}
    assert 0.0 <= payload["dm"]["p_value"] <= 1.0
    assert len(payload["folds"]) == 2
    assert payload["inference"]["forecasts"] == 60
    assert payload["inference"]["lstm_latency_ms_median"] > 0


def test_naive_figures_match_an_independent_computation(
    report: BacktestReport, ko_bars: pd.DataFrame
) -> None:
    close = ko_bars["close"].to_numpy()
    origins = np.arange(len(ko_bars) - 3 - 60, len(ko_bars) - 3)
    actual = np.stack([close[origins + h] for h in (1, 2, 3)], axis=1)
    naive_errors = actual - close[origins][:, None]
    naive = report.scores["naive"].summary
    assert naive["rmse"] == pytest.approx(np.sqrt(np.mean(naive_errors**2)), rel=1e-12)
    assert naive["mae"] == pytest.approx(np.mean(np.abs(naive_errors)), rel=1e-12)
    assert naive["theil_u2"] == 1.0
    assert naive["directional_accuracy"] == 0.5
    step_two = report.scores["naive"].per_step[1]
    assert step_two["rmse"] == pytest.approx(np.sqrt(np.mean(naive_errors[:, 1] ** 2)))
    np.testing.assert_allclose(report.series.actual, actual, rtol=1e-12)


def test_mase_uses_each_folds_training_scale(report: BacktestReport, ko_bars: pd.DataFrame) -> None:
    close = ko_bars["close"].to_numpy()
    first = len(ko_bars) - 3 - 60
    errors = np.abs(report.series.actual - report.series.predicted["lstm"])
    scales = [np.mean(np.abs(np.diff(close[: first + k * 30 + 1]))) for k in range(2)]
    expected = np.mean(np.concatenate([errors[:30] / scales[0], errors[30:] / scales[1]]))
    assert report.metric("lstm", "mase") == pytest.approx(expected, rel=1e-10)


def test_theil_u2_is_rmse_relative_to_naive(report: BacktestReport) -> None:
    lstm, naive = report.scores["lstm"].summary, report.scores["naive"].summary
    assert lstm["theil_u2"] == pytest.approx(lstm["rmse"] / naive["rmse"], rel=1e-12)


def test_folds_train_on_everything_before_their_block(
    report: BacktestReport, ko_bars: pd.DataFrame
) -> None:
    dates = [pd.Timestamp(d).date().isoformat() for d in ko_bars["date"]]
    first = len(ko_bars) - 3 - 60
    assert [f.train_end for f in report.folds] == [dates[first], dates[first + 30]]
    assert [f.test_start for f in report.folds] == [dates[first], dates[first + 30]]
    assert all(f.trained for f in report.folds)
    assert report.folds[0].train_start == dates[0]


def test_no_look_ahead(
    report: BacktestReport,
    ko_bars: pd.DataFrame,
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
) -> None:
    """Rewriting the future after the first test origin leaves the first forecasts untouched."""
    first = len(ko_bars) - 3 - 60
    changed = ko_bars.copy()
    for column in ("open", "high", "low", "close"):
        changed.loc[first + 1 :, column] *= 1.25
    again = walk_forward(
        changed,
        model_config=tiny_model_config,
        train_config=tiny_train_config,
        backtest_config=BACKTEST,
    )
    for model in ("lstm", "naive", "drift"):
        assert np.array_equal(
            again.series.predicted[model][0], report.series.predicted[model][0]
        ), model
    assert not np.array_equal(again.series.actual[0], report.series.actual[0])


def test_fit_once_reuses_the_first_model(
    ko_bars: pd.DataFrame, tiny_model_config: ModelConfig, tiny_train_config: TrainConfig
) -> None:
    once = walk_forward(
        ko_bars,
        model_config=tiny_model_config,
        train_config=tiny_train_config,
        backtest_config=BacktestConfig(folds=2, test_size=30, refit=False),
    )
    assert [f.trained for f in once.folds] == [True, False]
    assert once.folds[1].train_end == once.folds[0].train_end
    assert once.to_dict()["config"]["backtest"]["refit"] is False


def test_champion_is_scored_on_the_same_windows(
    report: BacktestReport,
    fitted_lstm: LSTMForecaster,
    ko_bars: pd.DataFrame,
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
) -> None:
    champion = fitted_lstm.to_artifact(symbol="KO")
    with_champion = walk_forward(
        ko_bars,
        model_config=tiny_model_config,
        train_config=tiny_train_config,
        backtest_config=BACKTEST,
        champion=champion,
    )
    payload = with_champion.to_dict()
    assert payload["champion_info"]["evaluated"] is True
    # The fixture model was trained on all 400 rows, so every window is in its sample.
    assert payload["champion_info"]["in_sample_windows"] == 60
    close = ko_bars["close"].to_numpy()
    origins = np.arange(len(ko_bars) - 3 - 60, len(ko_bars) - 3)
    expected = close[origins][:, None] * np.exp(fitted_lstm.predict_log_returns(ko_bars, origins))
    np.testing.assert_allclose(with_champion.series.predicted["champion"], expected, rtol=1e-12)
    assert payload["naive"] == report.to_dict()["naive"]


def test_too_short_history_names_the_rows_needed(
    ko_bars: pd.DataFrame, tiny_model_config: ModelConfig, tiny_train_config: TrainConfig
) -> None:
    with pytest.raises(InsufficientDataError, match="walk-forward backtest") as info:
        walk_forward(
            ko_bars.head(200),
            model_config=tiny_model_config,
            train_config=tiny_train_config,
            backtest_config=BacktestConfig(folds=3, test_size=50),
        )
    assert info.value.needed > 200


def test_plot_is_a_png(report: BacktestReport) -> None:
    png = backtest_png(report, title="KO")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000
