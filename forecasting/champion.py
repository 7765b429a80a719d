"""The champion in a backtest: scored as it is (never refitted) on the challenger's origins. Its
point forecasts cover every origin (for the report); its served intervals are run, from its own
calibration state, only on the origins after its training data: the only ones the gate judges it
on, because on the others it has seen the outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from forecasting.artifacts import ModelArtifact
from forecasting.candidates import CandidateIntervals, normalised_scores, point_forecasts
from forecasting.conformal import run_adaptive
from forecasting.forecast import FloatArray, IndexArray
from forecasting.windowing import log_returns_ahead


@dataclass(frozen=True, kw_only=True)
class ChampionScoring:
    """The champion's served point forecasts on every origin (n, H), the point model it serves,
    the end of its training data, and its interval losses on the origins after that end."""

    center: FloatArray
    point: str
    data_end: date | None
    interval_losses: FloatArray | None


def _interval_losses(
    predictor: Any, bars: pd.DataFrame, rows: IndexArray, horizon: int
) -> FloatArray | None:
    from forecasting.evaluation import interval_loss

    recipe = predictor.intervals
    if recipe is None or rows.size == 0:
        return None
    closes = bars["close"].to_numpy(dtype=np.float64)
    location, deviation = predictor.predict_distribution(bars, rows)
    center = (
        location
        if recipe.point == "lstm"
        else point_forecasts(recipe.point, rows.size, horizon, recipe.slope)
    )
    sigma = deviation if recipe.scale is None else recipe.scale.sigma(closes, rows, horizon)
    if sigma is None:
        return None
    actual = log_returns_ahead(closes, rows, horizon)
    issued, _ = run_adaptive(recipe.state, normalised_scores(actual, center, sigma))
    intervals = CandidateIntervals(
        name="champion",
        center=center,
        sigma=sigma,
        half=issued * sigma[:, :, None],
        levels=recipe.state.levels,
    )
    return interval_loss(intervals, actual)


def score_champion(
    champion: ModelArtifact | None, bars: pd.DataFrame, origins: IndexArray, horizon: int
) -> tuple[ChampionScoring | None, dict[str, Any] | None]:
    """The champion's scoring on the test origins, and what the report says about it (or why
    it cannot be scored on them)."""
    if champion is None:
        return None, None
    from forecasting.predictor import LSTMPredictor

    predictor = LSTMPredictor.from_artifact(champion)
    data = champion.metadata.get("data", {})
    info: dict[str, Any] = {
        "evaluated": False,
        "reason": None,
        "data_end": data.get("end") if isinstance(data, dict) else None,
        "created_at": champion.metadata.get("created_at"),
        "serves": predictor.served_kind,
    }
    if predictor.horizon != horizon:
        info["reason"] = f"champion horizon {predictor.horizon} differs from {horizon}"
        return None, info
    if predictor.min_rows > int(origins[0]) + 1:
        info["reason"] = f"champion lookback {predictor.model_config.lookback} is too long"
        return None, info
    info["evaluated"] = True
    dates = pd.to_datetime(bars["date"].iloc[origins])
    end = pd.Timestamp(info["data_end"]) if info["data_end"] else None
    after = (dates > end).to_numpy() if end is not None else np.zeros(origins.size, dtype=bool)
    info["in_sample_windows"] = int(origins.size - after.sum())
    info["out_of_sample_windows"] = int(after.sum())
    recipe = predictor.intervals
    point = "lstm" if recipe is None else recipe.point
    location = predictor.predict_log_returns(bars, origins)
    center = (
        location
        if point == "lstm" or recipe is None
        else point_forecasts(point, origins.size, horizon, recipe.slope)
    )
    return (
        ChampionScoring(
            center=center,
            point=point,
            data_end=None if end is None else end.date(),
            interval_losses=_interval_losses(predictor, bars, origins[after], horizon),
        ),
        info,
    )
