"""Walk-forward backtest: every candidate on the same windows, figures checked against
independent computations, the calibration split seeding each fold's intervals, no look-ahead,
fit-once and champion modes, the gate's decision in the report, and the plot."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import BacktestReport, walk_forward
from forecasting.candidates import REFERENCES
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.conformal import CalibrationState
from forecasting.model import LSTMForecaster
from forecasting.plots import backtest_png
from forecasting.scores import h_step_naive_scale
from forecasting.volatility import EwmaScale
from forecasting.windowing import InsufficientDataError, log_returns_ahead

#: What the issue asks of every candidate in ``stockcast backtest --json``.
REQUIRED = (
    "coverage_80",
    "coverage_95",
    "interval_score_80",
    "interval_score_95",
    "pinball",
    "crps",
    "mase",
    "theil_u2",
    "rmse",
    "mae",
    "mape",
    "r2",
)
BACKTEST = BacktestConfig(folds=2, test_size=30)
CANDIDATES = {
    f"{p}+{s}"
    for p in ("naive", "drift", "lstm")
    for s in ("ewma", "ewma_shrunk", "garch_t", "lstm_t")
}


@pytest.fixture(scope="module")
def report(
    ko_bars_long: pd.DataFrame, tiny_model_config: ModelConfig, tiny_train_config: TrainConfig
) -> BacktestReport:
    return walk_forward(
        ko_bars_long,
        model_config=tiny_model_config,
        train_config=tiny_train_config,
        backtest_config=BACKTEST,
    )


def first_origin(bars: pd.DataFrame) -> int:
    return len(bars) - 3 - 60


def test_report_names_the_served_candidate_and_scores_every_one(report: BacktestReport) -> None:
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert payload["selected"] == payload["decision"]["selected"]
    assert payload["selected"] in CANDIDATES or payload["selected"] == "champion"
    assert set(payload["candidates"]) == CANDIDATES
    assert set(payload["references"]) == set(REFERENCES)
    for name, figures in {**payload["candidates"], **payload["references"]}.items():
        for key in REQUIRED:
            assert isinstance(figures[key], float), (name, key)
        assert set(figures["coverage_by_fold"]["80"]) == {"0", "1"}
        assert set(figures["coverage_by_tercile"]["95"]) == {"low", "mid", "high"}
        tests = figures["coverage_tests"]["80"]
        assert [s["step"] for s in tests["per_step"]] == [1, 2, 3]
        assert {"kupiec", "christoffersen_independence"} <= set(tests["step_1"])
    dm = payload["candidates"]["lstm+ewma"]["dm"]
    for key in (
        "squared_error_vs_naive",
        "squared_error_vs_drift",
        "interval_score_vs_naive",
        "interval_score_vs_drift",
        "interval_score_vs_naive_sigma60",
    ):
        assert set(dm[key]) >= {"p_two_sided", "p_one_sided_better", "p_one_sided_worse"}
    assert payload["windows"] == 60
    assert len(payload["folds"]) == 2 and payload["folds"][1]["garch"]["params"] is not None
    assert payload["inference"]["forecasts"] == 60
    assert "percent" in payload["units"]


def test_naive_figures_match_an_independent_computation(
    report: BacktestReport, ko_bars_long: pd.DataFrame
) -> None:
    close = ko_bars_long["close"].to_numpy()
    origins = np.arange(first_origin(ko_bars_long), len(ko_bars_long) - 3)
    actual = np.stack([close[origins + h] for h in (1, 2, 3)], axis=1)
    naive_errors = actual - close[origins][:, None]
    naive = report.scores["naive"].summary
    assert naive["rmse"] == pytest.approx(np.sqrt(np.mean(naive_errors**2)), rel=1e-12)
    assert naive["mae"] == pytest.approx(np.mean(np.abs(naive_errors)), rel=1e-12)
    assert naive["theil_u2"] == 1.0
    assert naive["directional_accuracy"] == 0.5
    np.testing.assert_allclose(report.series.actual, actual, rtol=1e-12)


def test_mase_is_on_log_returns_with_each_folds_h_step_naive_scale(
    report: BacktestReport, ko_bars_long: pd.DataFrame
) -> None:
    close = ko_bars_long["close"].to_numpy()
    first = first_origin(ko_bars_long)
    origins = np.arange(first, first + 60)
    actual = log_returns_ahead(close, origins, 3)
    predicted = np.log(report.series.predicted["lstm"] / close[origins][:, None])
    scales = [h_step_naive_scale(close[: first + k * 30 + 1], 3) for k in range(2)]
    errors = np.abs(actual - predicted)
    expected = np.mean(np.concatenate([errors[:30] / scales[0], errors[30:] / scales[1]]))
    assert report.metric("lstm", "mase") == pytest.approx(expected, rel=1e-9)
    # on this scale naive scores about 1 whatever the price level
    assert 0.6 < report.metric("naive", "mase") < 1.5


def test_theil_u2_is_rmse_relative_to_naive_on_log_returns(report: BacktestReport) -> None:
    close = report.series.last_close[:, None]
    actual = np.log(report.series.actual / close)
    lstm = np.log(report.series.predicted["lstm"] / close)
    expected = np.sqrt(np.mean((actual - lstm) ** 2)) / np.sqrt(np.mean(actual**2))
    assert report.metric("lstm", "theil_u2") == pytest.approx(expected, rel=1e-9)


def test_each_fold_starts_from_its_own_calibration_split(
    report: BacktestReport,
    ko_bars_long: pd.DataFrame,
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
) -> None:
    """The first test origin's naive+ewma interval is the calibration split's conformal quantile
    of |r| / sigma_ewma times the EWMA sigma, recomputed here from scratch."""
    first = first_origin(ko_bars_long)
    fold = LSTMForecaster(tiny_model_config, tiny_train_config).fit(ko_bars_long.iloc[: first + 1])
    rows = fold.calibration_rows()
    close = ko_bars_long["close"].to_numpy()
    ewma = EwmaScale()
    scores = np.abs(log_returns_ahead(close, rows, 3)) / ewma.sigma(close, rows, 3)
    half = CalibrationState.initial(scores).half_widths()[0.8] * ewma.sigma(close, [first], 3)[0]
    expected_upper = close[first] * np.exp(half)
    np.testing.assert_allclose(report.series.upper["naive+ewma"][0.8][0], expected_upper, rtol=1e-9)


def test_folds_train_on_everything_before_their_block(
    report: BacktestReport, ko_bars_long: pd.DataFrame
) -> None:
    dates = [pd.Timestamp(d).date().isoformat() for d in ko_bars_long["date"]]
    first = first_origin(ko_bars_long)
    assert [f.train_end for f in report.folds] == [dates[first], dates[first + 30]]
    assert [f.test_start for f in report.folds] == [dates[first], dates[first + 30]]
    assert all(f.trained for f in report.folds)
    assert report.folds[0].train_start == dates[0]
    assert all(f.calibration_origins and f.calibration_origins >= 20 for f in report.folds)


def test_no_look_ahead(
    report: BacktestReport,
    ko_bars_long: pd.DataFrame,
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
) -> None:
    """Rewriting the future after the first test origin leaves the first forecasts, and every
    candidate's first intervals, untouched."""
    first = first_origin(ko_bars_long)
    changed = ko_bars_long.copy()
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
    for name in CANDIDATES | set(REFERENCES):
        for level in (0.8, 0.95):
            assert np.array_equal(
                again.series.upper[name][level][0], report.series.upper[name][level][0]
            ), name
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
    assert once.windows == 60


def test_the_champion_is_scored_but_never_judged_on_its_training_windows(
    report: BacktestReport,
    fitted_lstm: LSTMForecaster,
    ko_bars_long: pd.DataFrame,
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
) -> None:
    champion = fitted_lstm.to_artifact(symbol="KO")
    with_champion = walk_forward(
        ko_bars_long,
        model_config=tiny_model_config,
        train_config=tiny_train_config,
        backtest_config=BACKTEST,
        champion=champion,
    )
    payload = with_champion.to_dict()
    info = payload["champion_info"]
    assert info["evaluated"] is True
    # The fixture model was trained up to the last row, so every window is in its sample ...
    assert (info["in_sample_windows"], info["out_of_sample_windows"]) == (60, 0)
    # ... and the gate does not judge it on them: it stays, unjudged, and no comparison is made.
    decision = payload["decision"]
    assert decision["champion"] == "kept"
    assert decision["evidence"]["champion"]["windows_after_training"] == 0
    assert "challenger_vs_champion" not in decision["evidence"]["champion"]
    close = ko_bars_long["close"].to_numpy()
    origins = np.arange(first_origin(ko_bars_long), len(ko_bars_long) - 3)
    expected = close[origins][:, None] * np.exp(
        fitted_lstm.predict_log_returns(ko_bars_long, origins)
    )
    np.testing.assert_allclose(with_champion.series.predicted["champion"], expected, rtol=1e-12)
    assert payload["points"]["naive"] == report.to_dict()["points"]["naive"]


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
