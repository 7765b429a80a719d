"""The served plan: what a symbol serves after a retrain (the gate's candidate, its interval
recipe with the online calibration state, and the evidence for it), how a forecast is made from
it, and how matured forecasts feed its calibration back.

The plan is plain JSON so the service can keep it in its database: the forecast job serves it
(the champion's network only when the plan needs it), records with every step what the
calibration needs to score that step later (its centre ``m``, scale ``s`` and the normalised
half-widths issued), and the evaluate job turns each matured step into an ACI outcome. Feedback
is delayed by the step h by construction: a step-h forecast matures h sessions after it was
issued, and only then is it fed back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from forecasting.candidates import NETWORK_SCALE, IntervalRecipe
from forecasting.conformal import MaturedOutcome
from forecasting.errors import PortableError
from forecasting.report import INTERVAL_FIGURES

if TYPE_CHECKING:
    from forecasting.artifacts import ModelArtifact
    from forecasting.gate import GateDecision
    from forecasting.metrics import FloatArray
    from forecasting.predictor import LSTMPredictor, SimplePredictor

#: The reference every served candidate's interval score is shown against: the naive forecast
#: with normal intervals from the 60-day standard deviation of log returns.
NAIVE_REFERENCE: Final = "naive+sigma60"
#: What each p-value of a DM test stands for.
_ALTERNATIVES: Final = (
    ("p_one_sided_better", "one-sided", "the first model's loss is lower"),
    ("p_two_sided", "two-sided", "the losses differ"),
)


class PlanError(PortableError, ValueError):
    """A plan that cannot be built or served from what was given; says why."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"cannot serve the plan: {problem}")
        self.problem = problem


@dataclass(frozen=True, kw_only=True)
class PlanSpec:
    """A plan as the gate chose it, before it is stored. ``uses_network``: it needs the model
    version's network (an LSTM point, or its volatility head); otherwise it serves from prices
    alone."""

    candidate: str
    point: str
    scale: str
    uses_network: bool
    recalibrated: bool
    reason: str
    recipe: dict[str, Any]
    evidence: dict[str, Any] = field(default_factory=dict)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(float(value)) else None


def _figures(block: Mapping[str, Any] | None) -> dict[str, float | None]:
    block = block or {}
    return {key: _number(block.get(key)) for key in INTERVAL_FIGURES}


def _named_tests(prefix: str, tests: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, test in tests.items():
        if not isinstance(test, Mapping):
            continue
        for key, sided, alternative in _ALTERNATIVES:
            if key in test:
                out.append(
                    {
                        "test": f"{prefix}{name}",
                        "p_value": _number(test[key]),
                        "sided": sided,
                        "alternative": alternative,
                    }
                )
    return out


def plan_evidence(
    backtest: Mapping[str, Any], candidate: str, decision: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The evidence a plan shows for ``candidate`` from its retrain's backtest report: its
    backtest coverage and interval scores beside the naive reference's, every DM p-value named
    with its sidedness (the candidate's own tests, and the LSTM's tests the gate decided on)."""
    candidates = backtest.get("candidates") or {}
    references = backtest.get("references") or {}
    block = candidates.get(candidate) or references.get(candidate)
    gate = decision if decision is not None else backtest.get("decision") or {}
    lstm_tests = (gate.get("evidence") or {}).get("dm_squared_error") or {}
    dm = _named_tests("", (block or {}).get("dm") or {})
    dm += _named_tests("squared_error_", lstm_tests)
    return {
        "candidate": candidate,
        "windows": backtest.get("windows"),
        "horizon": backtest.get("horizon"),
        "backtest": _figures(block),
        "naive_reference": {
            "candidate": NAIVE_REFERENCE,
            **_figures(references.get(NAIVE_REFERENCE)),
        },
        "dm": dm,
        "gate": {
            key: gate.get(key)
            for key in ("policy", "alpha", "lstm_eligible", "champion", "selected")
        },
    }


def _recipe_of(metadata: Mapping[str, Any], serving_block: bool) -> dict[str, Any]:
    raw = (
        (metadata.get("serving") or {}).get("intervals")
        if serving_block
        else metadata.get("intervals")
    )
    if not isinstance(raw, Mapping):
        raise PlanError("the artifact holds no interval recipe for the selected candidate")
    recipe = IntervalRecipe.from_dict(raw)  # checks it before it is stored
    return recipe.to_dict()


def plan_from_decision(
    decision: GateDecision, metadata: Mapping[str, Any], backtest: Mapping[str, Any]
) -> PlanSpec | None:
    """The plan a retrain's decision makes: the promoted artifact's own intervals, or the simple
    candidate the gate selected (no champion, or a demoted one). ``None`` when the champion stays
    and so does its plan."""
    if not decision.promote and decision.selected == "champion":
        return None
    recipe = _recipe_of(metadata, serving_block=not decision.promote)
    return PlanSpec(
        candidate=decision.selected,
        point=decision.point,
        scale=decision.scale,
        uses_network=decision.point == "lstm" or decision.scale == NETWORK_SCALE,
        recalibrated=decision.recalibrated,
        reason=decision.reason,
        recipe=recipe,
        evidence=plan_evidence(backtest, decision.selected, decision.to_dict()),
    )


def plan_from_artifact(
    metadata: Mapping[str, Any], backtest: Mapping[str, Any], reason: str
) -> PlanSpec | None:
    """A plan for a champion recorded before plans existed: its artifact's own intervals (None
    when it has none: it keeps serving its fixed split-conformal intervals)."""
    if not isinstance(metadata.get("intervals"), Mapping):
        return None
    recipe = IntervalRecipe.from_dict(metadata["intervals"])
    return PlanSpec(
        candidate=recipe.name,
        point=recipe.point,
        scale=recipe.scale_kind,
        uses_network=True,
        recalibrated=recipe.state.source == "backtest",
        reason=reason,
        recipe=recipe.to_dict(),
        evidence=plan_evidence(backtest, recipe.name),
    )


def plan_predictor(
    recipe: Mapping[str, Any],
    artifact: ModelArtifact | None,
    horizon: int,
    *,
    threads: int | None = None,
) -> LSTMPredictor | SimplePredictor:
    """The predictor that serves a plan: the model version's network with the plan's (current)
    calibration when the plan needs it, else the naive or drift forecast with the plan's scale
    model, which runs over the latest stored bars at every forecast."""
    from forecasting.predictor import LSTMPredictor, SimplePredictor

    served = IntervalRecipe.from_dict(recipe)
    if served.state.horizon != horizon:
        raise PlanError(f"the plan has {served.state.horizon} steps, the symbol {horizon}")
    if served.point == "lstm" or served.scale is None:
        if artifact is None:
            raise PlanError("it needs its model version's network, and there is none")
        return LSTMPredictor.from_artifact(artifact, threads=threads).with_intervals(served)
    return SimplePredictor(
        point=served.point, horizon=horizon, intervals=served, slope=served.slope
    )


def issued_calibration(
    recipe: IntervalRecipe, center: FloatArray, sigma: FloatArray
) -> list[dict[str, Any]]:
    """Per step, what the calibration needs once that step matures: its centre, its scale and
    the normalised half-widths issued at each tracked level."""
    table = recipe.state.half_widths()
    return [
        {
            "center": float(center[h]),
            "sigma": float(sigma[h]),
            "issued": [float(table[level][h]) for level in recipe.state.levels],
        }
        for h in range(recipe.state.horizon)
    ]


@dataclass(frozen=True, kw_only=True)
class MaturedStep:
    """A stored forecast step whose actual close is now known."""

    step: int
    last_close: float
    actual: float
    calibration: Mapping[str, Any]


def matured_outcomes(recipe: IntervalRecipe, steps: Sequence[MaturedStep]) -> list[MaturedOutcome]:
    """Each matured step as an ACI outcome for ``recipe``'s state: the normalised score
    ``|log(actual / last_close) - m| / s`` and whether it fell outside the half-width issued at
    each tracked level. Steps that cannot be scored (no positive prices, another level grid) are
    left out."""
    state = recipe.state
    out = []
    for matured in steps:
        record = matured.calibration
        try:
            center = float(record["center"])
            sigma = float(record["sigma"])
            issued = [float(v) for v in record["issued"]]
        except (KeyError, TypeError, ValueError):
            continue
        if (
            not 1 <= matured.step <= state.horizon
            or len(issued) != len(state.levels)
            or not (sigma > 0.0 and matured.actual > 0.0 and matured.last_close > 0.0)
        ):
            continue
        score = abs(math.log(matured.actual / matured.last_close) - center) / sigma
        if math.isfinite(score):
            out.append(state.outcome(matured.step, score, issued))
    return out
