"""The served plan's pure parts: a matured step's ACI outcome, the evidence's named p-values, and
which decisions make a plan."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from forecasting.candidates import IntervalRecipe
from forecasting.conformal import CalibrationState
from forecasting.gate import GateDecision
from forecasting.plan import (
    MaturedStep,
    PlanError,
    issued_calibration,
    matured_outcomes,
    plan_from_decision,
    plan_predictor,
)
from forecasting.promotion import PromotionPolicy
from forecasting.volatility import EwmaScale


def _recipe(horizon: int = 2) -> IntervalRecipe:
    scores = np.linspace(0.1, 3.0, 40).reshape(20, 2)[:, :horizon]
    return IntervalRecipe(
        scale_kind="ewma",
        scale=EwmaScale(),
        state=CalibrationState.initial(scores),
        point="naive",
    )


def test_a_matured_step_is_scored_on_the_log_return_and_its_issued_widths() -> None:
    recipe = _recipe()
    issued = issued_calibration(recipe, np.array([0.0, 0.001]), np.array([0.01, 0.02]))
    # Step 2 closed 5% up from 100: score |log(1.05) - 0.001| / 0.02.
    [outcome] = matured_outcomes(
        recipe, [MaturedStep(step=2, last_close=100.0, actual=105.0, calibration=issued[1])]
    )
    expected = abs(math.log(1.05) - 0.001) / 0.02
    assert outcome.step == 2 and outcome.score == pytest.approx(expected)
    widths = recipe.state.half_widths()
    assert outcome.missed == tuple(expected > widths[level][1] for level in recipe.state.levels)


def test_steps_that_cannot_be_scored_are_left_out() -> None:
    recipe = _recipe()
    good = issued_calibration(recipe, np.zeros(2), np.full(2, 0.01))[0]
    steps = [
        MaturedStep(step=1, last_close=100.0, actual=101.0, calibration={}),
        MaturedStep(step=3, last_close=100.0, actual=101.0, calibration=good),
        MaturedStep(step=1, last_close=100.0, actual=101.0, calibration={**good, "sigma": 0.0}),
        MaturedStep(step=1, last_close=100.0, actual=101.0, calibration={**good, "issued": [1]}),
    ]
    assert matured_outcomes(recipe, steps) == []


def _decision(**changes: object) -> GateDecision:
    base = GateDecision(
        promote=False,
        reason="the LSTM does not beat both naive and drift (one-sided DM)",
        policy=PromotionPolicy.EVIDENCE,
        selected="naive+ewma",
        point="naive",
        scale="ewma",
        lstm_eligible=False,
        champion="none",
        recalibrated=False,
        lstm_scale="ewma",
        lstm_recalibrated=False,
        alpha=0.05,
        evidence={
            "dm_squared_error": {
                "lstm_vs_naive": {"p_one_sided_better": 0.4, "p_two_sided": 0.8},
            }
        },
    )
    return replace(base, **changes)  # type: ignore[arg-type]


BACKTEST = {
    "windows": 60,
    "horizon": 2,
    "candidates": {
        "naive+ewma": {
            "coverage_80": 0.78,
            "coverage_95": 0.96,
            "interval_score_80": 5.0,
            "interval_score_95": 7.0,
            "dm": {
                "interval_score_vs_naive_sigma60": {"p_one_sided_better": 0.1, "p_two_sided": 0.2}
            },
        }
    },
    "references": {"naive+sigma60": {"coverage_80": 0.7, "interval_score_95": 8.0}},
}


def test_a_simple_selection_plans_the_serving_blocks_recipe_with_named_evidence() -> None:
    recipe = _recipe().to_dict()
    plan = plan_from_decision(_decision(), {"serving": {"intervals": recipe}}, BACKTEST)
    assert plan is not None and plan.recipe == recipe and not plan.uses_network
    assert plan.evidence["backtest"]["coverage_80"] == 0.78
    assert plan.evidence["naive_reference"]["interval_score_95"] == 8.0
    by_name = {(e["test"], e["sided"]): e["p_value"] for e in plan.evidence["dm"]}
    assert by_name == {
        ("interval_score_vs_naive_sigma60", "one-sided"): 0.1,
        ("interval_score_vs_naive_sigma60", "two-sided"): 0.2,
        ("squared_error_lstm_vs_naive", "one-sided"): 0.4,
        ("squared_error_lstm_vs_naive", "two-sided"): 0.8,
    }


def test_a_kept_champion_makes_no_new_plan_and_a_missing_recipe_is_refused() -> None:
    kept = _decision(selected="champion", champion="kept", point="", scale="")
    assert plan_from_decision(kept, {}, BACKTEST) is None
    with pytest.raises(PlanError, match="no interval recipe"):
        plan_from_decision(_decision(), {}, BACKTEST)


def test_a_plan_that_needs_the_network_is_refused_without_one() -> None:
    recipe = replace(_recipe(), point="lstm").to_dict()
    with pytest.raises(PlanError, match="network"):
        plan_predictor(recipe, None, 2)
    with pytest.raises(PlanError, match="steps"):
        plan_predictor(_recipe().to_dict(), None, 5)
