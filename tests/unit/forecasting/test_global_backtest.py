"""The global LSTM in a symbol's walk-forward backtest: scored on the same origins as every other
candidate, each fold's network trained on every symbol's data before the fold only, and warm
started folds that never start from weights that saw their test windows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import BacktestReport, GlobalCandidate, walk_forward
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.global_model import GlobalFolds

BACKTEST = BacktestConfig(folds=2, test_size=30)
ROWS = 420


@pytest.fixture(scope="module")
def watchlist(synthetic_bars: Callable[..., pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {f"S{k}": synthetic_bars(ROWS, seed=k) for k in range(3)}


def _backtest(
    watchlist: dict[str, pd.DataFrame],
    configs: tuple[ModelConfig, TrainConfig],
    warm_epochs: int | None = None,
) -> tuple[BacktestReport, GlobalFolds]:
    folds = GlobalFolds(watchlist, *configs, warm_epochs=warm_epochs)
    report = walk_forward(
        watchlist["S0"],
        model_config=configs[0],
        train_config=configs[1],
        backtest_config=BACKTEST,
        global_candidate=GlobalCandidate(symbol="S0", folds=folds),
        warm_epochs=warm_epochs,
    )
    return report, folds


@pytest.fixture(scope="module")
def global_report(
    watchlist: dict[str, pd.DataFrame],
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
) -> tuple[BacktestReport, GlobalFolds]:
    return _backtest(watchlist, (tiny_model_config, tiny_train_config))


def test_the_gate_sees_the_global_candidate(
    global_report: tuple[BacktestReport, GlobalFolds],
) -> None:
    report, folds = global_report
    assert "glstm" in report.scores
    assert {"glstm+ewma", "glstm+garch_t"} <= set(report.candidates)
    assert "glstm+lstm_t" not in report.candidates
    assert "glstm_vs_naive" in report.decision.evidence["dm_squared_error"]
    metrics = report.summary_metrics()
    assert 0.0 <= metrics["dm_sq_glstm_vs_naive_p_one_sided_better"] <= 1.0
    assert np.isfinite(metrics["glstm_mase"])
    # One global network per fold cutoff, each fit on all three symbols.
    assert len(folds.models) == BACKTEST.folds
    assert all(m.training["symbols"] == 3 for m in folds.models.values())


def test_no_look_ahead_across_symbols(
    global_report: tuple[BacktestReport, GlobalFolds],
    watchlist: dict[str, pd.DataFrame],
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
) -> None:
    """Rewriting another symbol's future after S0's first test origin leaves S0's first
    global forecasts untouched; the same change before it moves them (the test can fail)."""
    report, _ = global_report
    first = ROWS - tiny_model_config.horizon - BACKTEST.folds * BACKTEST.test_size

    def rewritten(after: int) -> dict[str, pd.DataFrame]:
        changed = watchlist["S1"].copy()
        for column in ("open", "high", "low", "close"):
            changed.loc[after + 1 :, column] *= np.linspace(1.0, 3.0, ROWS - after - 1)
        return {**watchlist, "S1": changed}

    configs = (tiny_model_config, tiny_train_config)
    again, _ = _backtest(rewritten(first), configs)
    assert np.array_equal(again.series.predicted["glstm"][0], report.series.predicted["glstm"][0])
    earlier, _ = _backtest(rewritten(first - 150), configs)
    assert not np.array_equal(
        earlier.series.predicted["glstm"][0], report.series.predicted["glstm"][0]
    )


def test_warm_started_folds_fine_tune_the_previous_fold(
    watchlist: dict[str, pd.DataFrame], tiny_model_config: ModelConfig
) -> None:
    train = TrainConfig(
        epochs=4, batch_size=32, patience=4, accelerator="cpu", max_history=None, ensemble=1
    )
    report, folds = _backtest(watchlist, (tiny_model_config, train), warm_epochs=1)
    assert [f.lstm_epochs for f in report.folds] == [4, 1]
    models = [folds.models[day] for day in sorted(folds.models)]
    assert [m.training["warm_start_epochs"] for m in models] == [None, 1]
    # The second fold starts from the first fold's weights: its first loss is the lower.
    assert models[1].training["first_train_loss"] < models[0].training["first_train_loss"]
