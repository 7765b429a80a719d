"""The backtest's figures: every point model, candidate and reference scored on the same origins
(with the Diebold-Mariano tests between them and the seed spread of an ensemble), and the report
as JSON and as flat metrics for MLflow and the database."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from forecasting.candidates import (
    GLOBAL_POINT,
    POINT_MODELS,
    SIMPLE_POINTS,
    CandidateIntervals,
    candidate_name,
    split_name,
)
from forecasting.evaluation import (
    ScoringContext,
    dm_test,
    interval_figures,
    interval_loss,
    point_figures,
    point_loss,
    point_per_step,
)
from forecasting.metrics import FloatArray

if TYPE_CHECKING:
    from forecasting.backtest import BacktestReport, ModelScores

#: What the units of the figures are, written into every report.
UNITS: Final = (
    "interval_score_*, width_*, pinball, crps and mse_log_pct are in percent of cumulative log "
    "return (log return x 100); mase is on log returns, scaled per step by the in-sample error of "
    "the h-step naive forecast; theil_u2 is RMSE / naive RMSE on log returns; rmse, mae, mape, "
    "r2 and directional_accuracy are on prices. Every DM p-value names its alternative: "
    "p_one_sided_better (the first model's loss is lower), p_one_sided_worse, p_two_sided."
)
#: The headline interval figures of a candidate (flat metrics for MLflow and the database).
INTERVAL_FIGURES: Final = (
    "coverage_80",
    "coverage_95",
    "interval_score_80",
    "interval_score_95",
    "crps",
    "kupiec_min_p_80",
    "kupiec_min_p_95",
)
_REFERENCE_BASELINE: Final = "naive+sigma60"


@dataclass(frozen=True, kw_only=True)
class Scored:
    """Everything :func:`score_all` computes; the gate reads the last three fields."""

    points: dict[str, ModelScores]
    candidates: dict[str, dict[str, Any]]
    references: dict[str, dict[str, Any]]
    seeds: dict[str, Any] | None
    point_losses: dict[str, FloatArray]
    interval_losses: dict[str, FloatArray]
    kupiec_min_p: dict[str, tuple[float, float]]


def _candidate_dm(
    name: str,
    point_losses: Mapping[str, FloatArray],
    interval_losses: Mapping[str, FloatArray],
    horizon: int,
) -> dict[str, Any]:
    """DM on squared error against naive and drift; on the interval score against naive and
    drift with the same scale model, and against naive ± sigma60."""
    point, scale = split_name(name)
    out: dict[str, Any] = {}
    for base in SIMPLE_POINTS:
        if point != base and point in point_losses:
            out[f"squared_error_vs_{base}"] = dm_test(
                point_losses[point], point_losses[base], horizon
            )
        base_name = candidate_name(base, scale)
        if base_name != name and base_name in interval_losses:
            out[f"interval_score_vs_{base}"] = dm_test(
                interval_losses[name], interval_losses[base_name], horizon
            )
    if name != _REFERENCE_BASELINE:
        out["interval_score_vs_naive_sigma60"] = dm_test(
            interval_losses[name], interval_losses[_REFERENCE_BASELINE], horizon
        )
    return out


def _seed_spread(members: FloatArray, context: ScoringContext) -> dict[str, Any]:
    """Each ensemble member scored alone: how much the seed moves the LSTM's figures."""
    naive = point_loss(context.actual, np.zeros_like(context.actual))
    per_member = []
    for k, center in enumerate(members):
        figures = point_figures(center, context)
        dm = dm_test(point_loss(context.actual, center), naive, context.horizon)
        per_member.append(
            {
                "member": k,
                "mase": figures["mase"],
                "theil_u2": figures["theil_u2"],
                "mse_log_pct": figures["mse_log_pct"],
                "dm_vs_naive_p_one_sided_better": dm["p_one_sided_better"],
            }
        )
    spread = {}
    for key in ("mase", "theil_u2", "mse_log_pct"):
        values = [m[key] for m in per_member]
        spread[key] = {
            "min": min(values),
            "max": max(values),
            "sd": float(np.std(values, ddof=1)),
        }
    return {"members": len(per_member), "per_member": per_member, "spread": spread}


def score_all(
    context: ScoringContext,
    points: Mapping[str, FloatArray],
    candidates: Mapping[str, CandidateIntervals],
    references: Mapping[str, CandidateIntervals],
    members: FloatArray | None,
) -> Scored:
    """Score every point model, candidate and reference on the same origins."""
    from forecasting.backtest import ModelScores

    scores = {
        name: ModelScores(
            summary=point_figures(center, context), per_step=tuple(point_per_step(center, context))
        )
        for name, center in points.items()
    }
    losses = {name: point_loss(context.actual, center) for name, center in points.items()}
    everything = {**candidates, **references}
    interval_losses = {name: interval_loss(c, context.actual) for name, c in everything.items()}

    def block(name: str, candidate: CandidateIntervals) -> dict[str, Any]:
        point, scale = split_name(name)
        figures = dict(scores[point].summary) if point in scores else {}
        return {
            "point": point,
            "scale": scale,
            **figures,
            **interval_figures(candidate, context),
            "dm": _candidate_dm(name, losses, interval_losses, context.horizon),
        }

    scored_candidates = {name: block(name, c) for name, c in candidates.items()}
    return Scored(
        points=scores,
        candidates=scored_candidates,
        references={name: block(name, c) for name, c in references.items()},
        seeds=None if members is None else _seed_spread(members, context),
        point_losses=losses,
        interval_losses={name: interval_losses[name] for name in candidates},
        kupiec_min_p={
            name: (c["kupiec_min_p_80"], c["kupiec_min_p_95"])
            for name, c in scored_candidates.items()
        },
    )


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN or infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def report_dict(report: BacktestReport) -> dict[str, Any]:
    out: dict[str, Any] = {
        "selected": report.decision.selected,
        "decision": report.decision.to_dict(),
        "units": UNITS,
        "points": {name: scores.to_dict() for name, scores in report.scores.items()},
        "candidates": report.candidates,
        "references": report.references,
        "seeds": report.seeds,
        "folds": [fold.to_dict() for fold in report.folds],
        "windows": report.windows,
        "horizon": report.horizon,
        "config": report.config,
        "inference": report.inference,
    }
    if report.champion is not None:
        out["champion_info"] = report.champion
    safe: dict[str, Any] = json_safe(out)
    return safe


def point_scale(report: BacktestReport, point: str) -> str | None:
    """The scale model the gate would serve with ``point`` (the lowest interval score among the
    Kupiec-passing candidates of that point, else the lowest)."""
    from forecasting.gate import KUPIEC_ALPHA

    names = [n for n in report.candidates if split_name(n)[0] == point]
    if point != "lstm":
        names = [n for n in names if split_name(n)[1] != "lstm_t"]
    if not names:
        return None
    threshold = KUPIEC_ALPHA / report.horizon

    def passes(name: str) -> bool:
        c = report.candidates[name]
        return bool(c["kupiec_min_p_80"] >= threshold and c["kupiec_min_p_95"] >= threshold)

    def score(name: str) -> float:
        c = report.candidates[name]
        return float(c["interval_score_80"] + c["interval_score_95"]) / 2.0

    pool = [n for n in names if passes(n)] or names
    return split_name(min(pool, key=score))[1]


def _global_dm(report: BacktestReport) -> dict[str, float]:
    """The global LSTM's one-sided DM p-values against naive and drift, when it was scored."""
    glstm = next(
        (c for n, c in report.candidates.items() if split_name(n)[0] == GLOBAL_POINT), None
    )
    if glstm is None:
        return {}
    return {
        f"dm_sq_glstm_vs_{base}_p_one_sided_better": float(
            glstm["dm"][f"squared_error_vs_{base}"]["p_one_sided_better"]
        )
        for base in SIMPLE_POINTS
    }


def summary_metrics(report: BacktestReport) -> dict[str, float]:
    """See :meth:`forecasting.backtest.BacktestReport.summary_metrics`."""
    out: dict[str, float] = {}
    for model, scores in report.scores.items():
        for name, value in scores.summary.items():
            out[f"{model}_{name}"] = value
    for point in (*POINT_MODELS, GLOBAL_POINT):
        scale = point_scale(report, point)
        if scale is None:
            continue
        served = report.candidates[candidate_name(point, scale)]
        for key in INTERVAL_FIGURES:
            out[f"{point}_{key}"] = float(served[key])
    if report.decision.selected in report.candidates:
        served = report.candidates[report.decision.selected]
        for key in INTERVAL_FIGURES:
            out[f"served_{key}"] = float(served[key])
    out.update(_global_dm(report))
    lstm = next((c for n, c in report.candidates.items() if split_name(n)[0] == "lstm"), None)
    if lstm is not None:
        for base in SIMPLE_POINTS:
            test = lstm["dm"][f"squared_error_vs_{base}"]
            for side in ("p_two_sided", "p_one_sided_better", "p_one_sided_worse"):
                out[f"dm_sq_lstm_vs_{base}_{side}"] = float(test[side])
        naive = lstm["dm"]["squared_error_vs_naive"]
        out["dm_statistic"] = float(
            naive["statistic"] if naive["statistic"] is not None else math.inf
        )
        # The key the web reads: two-sided, as its schema says.
        out["dm_p_value"] = float(naive["p_two_sided"])
    for name, candidate in report.candidates.items():
        point, scale = split_name(name)
        for key in INTERVAL_FIGURES:
            out[f"cand_{point}_{scale}_{key}"] = float(candidate[key])
    out["gate_lstm_eligible"] = 1.0 if report.decision.lstm_eligible else 0.0
    return out
