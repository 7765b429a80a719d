"""The served intervals of a final fit: the gate chose a candidate on the backtest; this builds
what serving it needs from the final fit's calibration split (or, when the backtest's intervals
failed the coverage test, from the backtest's own out-of-sample scores), as plain JSON for the
artifact."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forecasting.candidates import (
    IntervalRecipe,
    candidate_name,
    drift_slope,
    normalised_scores,
    point_forecasts,
)
from forecasting.conformal import DEFAULT_GAMMA, DEFAULT_WINDOW, CalibrationState
from forecasting.volatility import fit_scale
from forecasting.windowing import log_returns_ahead

if TYPE_CHECKING:
    from forecasting.backtest import BacktestReport
    from forecasting.forecast import FloatArray
    from forecasting.model import LSTMForecaster


def _calibration_state(
    scores: FloatArray, report: BacktestReport, name: str, recalibrate: bool
) -> CalibrationState:
    settings = report.config.get("calibration", {})
    window = int(settings.get("window", DEFAULT_WINDOW))
    gamma = float(settings.get("gamma", DEFAULT_GAMMA))
    if recalibrate and name in report.series.scores:
        return CalibrationState.initial(
            report.series.scores[name], window=window, gamma=gamma, source="backtest"
        )
    return CalibrationState.initial(scores, window=window, gamma=gamma)


def _slope(point: str, final: LSTMForecaster, bars: pd.DataFrame) -> float:
    return drift_slope(_closes_before_calibration(final, bars)) if point == "drift" else 0.0


def _point_on(point: str, final: LSTMForecaster, bars: pd.DataFrame, rows: Any) -> FloatArray:
    if point == "lstm":
        return final.predict_log_returns(bars, rows)
    return point_forecasts(point, len(rows), final.horizon, _slope(point, final, bars))


def _closes_before_calibration(final: LSTMForecaster, bars: pd.DataFrame) -> FloatArray:
    closes = bars["close"].to_numpy(dtype=np.float64)
    summary = final.summary
    first_row = len(bars) - summary.rows if summary is not None else 0
    result: FloatArray = closes[first_row : int(final.calibration_rows()[0]) + 1]
    return result


def interval_recipe(
    *,
    point: str,
    scale_kind: str,
    final: LSTMForecaster,
    bars: pd.DataFrame,
    report: BacktestReport,
    recalibrate: bool,
) -> IntervalRecipe:
    """The recipe of candidate ``point+scale_kind`` after the final fit on ``bars`` (the bars
    the final model was fitted on: their calibration rows give the initial scores)."""
    rows = final.calibration_rows()
    closes = bars["close"].to_numpy(dtype=np.float64)
    horizon = final.horizon
    if scale_kind == "lstm_t":
        scale = None
        sigma = final.predict_distribution(bars, rows)[1]
        if sigma is None:
            raise ValueError("lstm_t needs the Student-t head")
    else:
        scale = fit_scale(scale_kind, _closes_before_calibration(final, bars))
        sigma = scale.sigma(closes, rows, horizon)
    actual = log_returns_ahead(closes, rows, horizon)
    scores = normalised_scores(actual, _point_on(point, final, bars, rows), sigma)
    name = candidate_name(point, scale_kind)
    state = _calibration_state(scores, report, name, recalibrate)
    return IntervalRecipe(
        scale_kind=scale_kind,
        scale=scale,
        state=state,
        point=point,
        slope=_slope(point, final, bars),
    )


def serving_metadata(
    final: LSTMForecaster, bars: pd.DataFrame, report: BacktestReport
) -> dict[str, Any]:
    """Set the artifact's served intervals on ``final`` and return its ``serving`` block.

    A promoted artifact serves the selected candidate (the LSTM's point, or a simple point with
    the network's volatility); one that is not promoted keeps the LSTM point's best intervals,
    and the ``serving`` block carries the simple candidate the gate selected (point, slope and
    intervals), which needs no network."""
    decision = report.decision
    if decision.promote:
        own = (decision.point, decision.scale, decision.recalibrated)
    elif decision.lstm_scale is not None:
        own = ("lstm", decision.lstm_scale, decision.lstm_recalibrated)
    else:
        own = None
    if own is not None:
        point, scale_kind, recalibrate = own
        final.set_intervals(
            interval_recipe(
                point=point,
                scale_kind=scale_kind,
                final=final,
                bars=bars,
                report=report,
                recalibrate=recalibrate,
            )
        )
    serving: dict[str, Any] = {
        "selected": decision.selected,
        "point": decision.point,
        "scale": decision.scale,
        "recalibrated": decision.recalibrated,
        "reason": decision.reason,
    }
    if not decision.promote and decision.selected != "champion":
        recipe = interval_recipe(
            point=decision.point,
            scale_kind=decision.scale,
            final=final,
            bars=bars,
            report=report,
            recalibrate=decision.recalibrated,
        )
        serving["intervals"] = recipe.to_dict()
    return serving
