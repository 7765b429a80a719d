"""The gate: which candidate a symbol serves, decided on out-of-sample evidence.

1. One loss for every point comparison: each origin's squared error of the cumulative log return,
   averaged over its H steps, on the same out-of-sample origins; Diebold-Mariano with HLN's
   correction and lag H-1.
2. The LSTM's point forecast is served only when the one-sided DM test says it beats **both**
   naive and drift at ``alpha`` (H1: its loss is lower). Otherwise the simple point model with the
   lower mean loss is served, labelled as such.
3. For the chosen point model, the scale model with the lowest mean interval score (the mean of
   the 80% and 95% scores) among those whose backtest intervals pass Kupiec's test at both levels
   (every horizon step on non-overlapping origins, Bonferroni: each step at ``kupiec_alpha / H``).
   If none passes, the intervals are never served as they are: the best is served recalibrated
   from its own out-of-sample backtest scores, and the decision says so. The LSTM's Student-t
   scale competes with EWMA and GARCH for every point model: when it wins for a simple point, the
   network is served for its volatility alone (``naive+lstm_t``), and the decision says that too.
4. The champion (an artifact from an earlier retrain) is re-tested, as it is, only on origins
   after the end of its own training data; with at least ``min_windows`` of them it is demoted
   when it no longer beats the best simple model there (one-sided DM at ``alpha``): on the point
   loss when it serves the LSTM's point, on the interval score when it serves a simple point with
   its network's volatility.
5. Challenger against champion: on those same origins (out of sample for both) and the same loss,
   the challenger's mean loss must be below the champion's by ``margin`` (relative). Too few
   windows: the champion stays, unjudged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

import numpy as np

from forecasting.candidates import (
    GLOBAL_POINT,
    NETWORK_POINTS,
    NETWORK_SCALE,
    SCALE_MODELS,
    SIMPLE_POINTS,
    candidate_name,
    split_name,
)
from forecasting.metrics import (
    FloatArray,
    MetricInputError,
    as_float_array,
    diebold_mariano_losses,
)
from forecasting.promotion import DEFAULT_ALPHA, PromotionPolicy, parse_policy

#: Coverage tests reject at 1% (family-wise over the horizon steps).
KUPIEC_ALPHA: Final = 0.01
#: The challenger's mean loss must be 1% below the champion's.
DEFAULT_MARGIN: Final = 0.01
#: Fewest out-of-sample origins a champion is judged on.
MIN_WINDOWS: Final = 20


@dataclass(frozen=True, kw_only=True)
class ChampionEvidence:
    """The champion scored as it is on the backtest origins. ``point``: the point model it serves
    (``lstm``, or a simple one served with its network's scale). ``point_losses``: its point
    loss on every origin; ``interval_losses``: its served intervals' loss on the origins after
    ``data_end`` only (None when it stores no interval recipe)."""

    data_end: date | None
    point: str
    point_losses: FloatArray
    interval_losses: FloatArray | None = None


@dataclass(frozen=True, kw_only=True)
class GateEvidence:
    """What the gate reads from a backtest. ``point_losses``: per point model (``naive``,
    ``drift``, ``lstm``), each origin's loss (:func:`forecasting.evaluation.point_loss`).
    ``interval_losses``: per candidate, each origin's interval score
    (:func:`forecasting.evaluation.interval_loss`). ``kupiec_min_p``: per candidate, the smallest
    per-step Kupiec p-value at 80% and at 95%. ``origin_dates``: the test origins."""

    horizon: int
    origin_dates: tuple[date, ...]
    point_losses: Mapping[str, FloatArray]
    interval_losses: Mapping[str, FloatArray]
    kupiec_min_p: Mapping[str, tuple[float, float]]
    champion: ChampionEvidence | None = None

    def __post_init__(self) -> None:
        """Broken figures are refused whatever the policy, so a broken backtest cannot slip
        through an ``always`` gate unnoticed."""
        n = len(self.origin_dates)
        losses = {f"point_losses[{k}]": v for k, v in self.point_losses.items()}
        losses |= {f"interval_losses[{k}]": v for k, v in self.interval_losses.items()}
        if self.champion is not None:
            losses["champion.point_losses"] = self.champion.point_losses
        for name, values in losses.items():
            array = as_float_array(name, values)
            if array.shape != (n,) or (array < 0.0).any():
                raise MetricInputError(name, f"must be {n} non-negative losses, one per origin")
        if self.champion is not None and self.champion.interval_losses is not None:
            as_float_array("champion.interval_losses", self.champion.interval_losses)
        missing = [p for p in SIMPLE_POINTS if p not in self.point_losses]
        if missing:
            raise MetricInputError("point_losses", f"lacks {', '.join(missing)}")
        for name, pair in self.kupiec_min_p.items():
            if not all(0.0 <= p <= 1.0 for p in pair):
                raise MetricInputError(f"kupiec_min_p[{name}]", f"is {pair!r}")
        if set(self.kupiec_min_p) != set(self.interval_losses):
            raise MetricInputError("kupiec_min_p", "must name the same candidates as the losses")

    @property
    def interval_scores(self) -> dict[str, float]:
        """Each candidate's mean interval score (the mean of its 80% and 95% scores)."""
        return {name: float(np.mean(loss)) for name, loss in self.interval_losses.items()}


@dataclass(frozen=True, kw_only=True)
class GateDecision:
    """The gate's verdict, JSON-able. ``promote``: the challenger's artifact becomes the
    champion (it serves the LSTM's point, or a simple point with the network's volatility).
    ``selected``: the candidate served (``"champion"`` when the champion stays). ``champion``:
    ``none``, ``kept``, ``demoted`` or ``replaced``. ``recalibrated``: the served intervals failed
    the coverage test and are served recalibrated. ``lstm_scale``/``lstm_recalibrated``: the
    intervals the LSTM's own point forecast would be served with."""

    promote: bool
    reason: str
    policy: PromotionPolicy
    selected: str
    point: str
    scale: str
    lstm_eligible: bool
    champion: str
    recalibrated: bool
    lstm_scale: str | None
    lstm_recalibrated: bool
    alpha: float
    evidence: dict[str, Any] = field(default_factory=dict)
    global_eligible: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reason": self.reason,
            "policy": self.policy.value,
            "selected": self.selected,
            "point": self.point,
            "scale": self.scale,
            "lstm_eligible": self.lstm_eligible,
            "champion": self.champion,
            "recalibrated": self.recalibrated,
            "lstm_scale": self.lstm_scale,
            "lstm_recalibrated": self.lstm_recalibrated,
            "alpha": self.alpha,
            "evidence": self.evidence,
            "global_eligible": self.global_eligible,
        }


def _p(value: float) -> str:
    return f"{value:.3g}"


def _dm(model: FloatArray, baseline: FloatArray, horizon: int) -> dict[str, Any]:
    return diebold_mariano_losses(model, baseline, horizon).to_dict()


def choose_scale(
    point: str,
    evidence: GateEvidence,
    *,
    kupiec_alpha: float = KUPIEC_ALPHA,
    network: bool = True,
) -> tuple[str, bool]:
    """The scale model served with ``point`` and whether its intervals need recalibrating: the
    lowest interval score among the candidates that pass Kupiec at both levels, else the lowest
    interval score (recalibrated). ``network=False`` leaves out the LSTM's own scale."""
    allowed = SCALE_MODELS if network else tuple(s for s in SCALE_MODELS if s != NETWORK_SCALE)
    scores = evidence.interval_scores
    names = [s for s in allowed if candidate_name(point, s) in scores]
    if not names:
        raise ValueError(f"no candidate with point model {point!r} was scored")
    per_step = kupiec_alpha / evidence.horizon

    def passes(scale: str) -> bool:
        p80, p95 = evidence.kupiec_min_p[candidate_name(point, scale)]
        return p80 >= per_step and p95 >= per_step

    def score(scale: str) -> float:
        return scores[candidate_name(point, scale)]

    passing = [s for s in names if passes(s)]
    if passing:
        return min(passing, key=score), False
    return min(names, key=score), True


def _best_simple(losses: Mapping[str, FloatArray], mask: np.ndarray[Any, Any]) -> str:
    return min(SIMPLE_POINTS, key=lambda p: float(np.mean(losses[p][mask])))


def _best_price_candidate(evidence: GateEvidence, mask: np.ndarray[Any, Any]) -> str:
    """The simple candidate with a price-computed scale and the lowest interval loss on ``mask``."""
    names = [
        n
        for n in evidence.interval_losses
        if split_name(n)[0] in SIMPLE_POINTS and split_name(n)[1] != NETWORK_SCALE
    ]
    return min(names, key=lambda n: float(np.mean(evidence.interval_losses[n][mask])))


def _lstm_evidence(
    evidence: GateEvidence, alpha: float, point: str = "lstm"
) -> tuple[bool, dict[str, Any]]:
    """Whether the network point ``point`` beats both naive and drift (one-sided DM), and the
    tests, named ``<point>_vs_<baseline>``."""
    losses = evidence.point_losses
    if point not in losses:
        return False, {}
    tests = {
        f"{point}_vs_{baseline}": _dm(losses[point], losses[baseline], evidence.horizon)
        for baseline in SIMPLE_POINTS
    }
    eligible = all(test["p_one_sided_better"] < alpha for test in tests.values())
    return eligible, tests


def _network_challenger(
    evidence: GateEvidence, eligible: Mapping[str, bool], kupiec_alpha: float
) -> tuple[str, str, bool] | None:
    """The evidence-backed network point with the lower mean loss (the per-symbol LSTM or the
    global one) and its scale, or None when neither beats both simple models. The global point
    never pairs with the per-symbol network's scale: no one artifact could serve the pair."""
    points = [p for p in NETWORK_POINTS if eligible.get(p)]
    if not points:
        return None
    point = min(points, key=lambda p: float(np.mean(evidence.point_losses[p])))
    scale, recal = choose_scale(
        point, evidence, kupiec_alpha=kupiec_alpha, network=point != GLOBAL_POINT
    )
    return point, scale, recal


@dataclass(frozen=True, kw_only=True)
class _ChampionVerdict:
    fate: str
    windows: int
    reason: str
    tests: dict[str, Any]
    challenger_better: bool | None


def _champion_losses(
    evidence: GateEvidence, challenger: str, mask: np.ndarray[Any, Any]
) -> tuple[str, FloatArray, str, FloatArray, FloatArray]:
    """(loss kind, champion's losses, best simple model, its losses, challenger's losses) on the
    masked origins: squared error for a champion that serves the LSTM's point, the interval
    score for one that serves a simple point with its network's volatility."""
    champion = evidence.champion
    if champion is None:
        raise ValueError("no champion to compare")
    if champion.point == "lstm" or champion.interval_losses is None:
        simple = _best_simple(evidence.point_losses, mask)
        point = split_name(challenger)[0]
        return (
            "squared_error",
            champion.point_losses[mask],
            simple,
            evidence.point_losses[simple][mask],
            evidence.point_losses[point][mask],
        )
    simple = _best_price_candidate(evidence, mask)
    return (
        "interval_score",
        champion.interval_losses,
        simple,
        evidence.interval_losses[simple][mask],
        evidence.interval_losses[challenger][mask],
    )


def _judge_champion(
    evidence: GateEvidence, challenger: str, *, alpha: float, margin: float, min_windows: int
) -> _ChampionVerdict:
    """Re-test the champion on origins after its training data, and compare the challenger
    (candidate ``challenger``) with it there (never on the champion's own training windows)."""
    champion = evidence.champion
    if champion is None:
        return _ChampionVerdict(fate="none", windows=0, reason="", tests={}, challenger_better=None)
    end = champion.data_end
    mask = np.array([end is not None and day > end for day in evidence.origin_dates])
    windows = int(mask.sum())
    if windows < max(min_windows, evidence.horizon + 1):
        reason = (
            f"the champion has {windows} out-of-sample origin(s) after its training data "
            f"(needs {min_windows}): kept, not judged"
        )
        return _ChampionVerdict(
            fate="kept", windows=windows, reason=reason, tests={}, challenger_better=None
        )
    kind, own, simple, baseline, rival = _champion_losses(evidence, challenger, mask)
    retest = _dm(own, baseline, evidence.horizon)
    holds = retest["p_one_sided_better"] < alpha
    reason = (
        f"on {windows} origins after its training data the champion "
        f"{'still beats' if holds else 'no longer beats'} {simple} on {kind.replace('_', ' ')} "
        f"(DM one-sided p={_p(retest['p_one_sided_better'])}, alpha {_p(alpha)})"
    )
    better = bool(np.mean(rival) < np.mean(own) * (1.0 - margin))
    tests = {
        "loss": kind,
        f"champion_vs_{simple}": retest,
        "challenger_vs_champion": {
            "challenger": challenger,
            "windows": windows,
            "challenger_mean_loss": float(np.mean(rival)),
            "champion_mean_loss": float(np.mean(own)),
            "margin": margin,
            "challenger_better": better,
        },
    }
    return _ChampionVerdict(
        fate="kept" if holds else "demoted",
        windows=windows,
        reason=reason,
        tests=tests,
        challenger_better=better,
    )


def decide(
    evidence: GateEvidence,
    policy: PromotionPolicy | str = PromotionPolicy.EVIDENCE,
    *,
    alpha: float = DEFAULT_ALPHA,
    margin: float = DEFAULT_MARGIN,
    min_windows: int = MIN_WINDOWS,
    kupiec_alpha: float = KUPIEC_ALPHA,
) -> GateDecision:
    """The gate's decision under ``policy`` (see the module docstring)."""
    chosen = parse_policy(policy)
    if not 0.0 < alpha < 1.0 or not 0.0 <= margin < 1.0:
        raise ValueError(f"alpha must be in (0, 1) and margin in [0, 1), got {alpha}, {margin}")
    has_lstm = "lstm" in evidence.point_losses
    eligible, tests = _lstm_evidence(evidence, alpha)
    global_eligible, global_tests = _lstm_evidence(evidence, alpha, GLOBAL_POINT)
    tests = {**tests, **global_tests}
    everywhere = np.ones(len(evidence.origin_dates), dtype=bool)
    simple = _best_simple(evidence.point_losses, everywhere)
    lstm_scale, lstm_recal = (
        choose_scale("lstm", evidence, kupiec_alpha=kupiec_alpha) if has_lstm else (None, False)
    )
    simple_scale, simple_recal = choose_scale(
        simple, evidence, kupiec_alpha=kupiec_alpha, network=has_lstm
    )
    challenger = _network_challenger(
        evidence, {"lstm": eligible, GLOBAL_POINT: global_eligible}, kupiec_alpha
    ) or (simple, simple_scale, simple_recal)
    network = challenger[0] in NETWORK_POINTS or challenger[1] == NETWORK_SCALE
    verdict = _judge_champion(
        evidence,
        candidate_name(challenger[0], challenger[1]),
        alpha=alpha,
        margin=margin,
        min_windows=min_windows,
    )
    promote, why = _promotion(
        chosen, eligible or global_eligible, network, verdict, has_lstm=has_lstm
    )
    if challenger[0] == GLOBAL_POINT:
        why = why.replace("the LSTM beats", "the global LSTM beats")
    if promote and not network:  # 'always' / 'beat_champion' serve the LSTM's own point
        challenger = ("lstm", lstm_scale or "", lstm_recal)
    if promote:
        point, scale, recalibrated = challenger
        selected = candidate_name(point, scale)
    elif verdict.fate == "kept":
        point, scale, recalibrated, selected = "", "", False, "champion"
    else:
        scale, recalibrated = choose_scale(
            simple, evidence, kupiec_alpha=kupiec_alpha, network=False
        )
        point, selected = simple, candidate_name(simple, scale)
    fate = "replaced" if promote and verdict.fate in ("kept", "demoted") else verdict.fate
    return GateDecision(
        promote=promote,
        reason=_reason(
            why,
            verdict=verdict,
            selected=selected,
            recalibrated=recalibrated,
            tests=tests,
            alpha=alpha,
        ),
        policy=chosen,
        selected=selected,
        point=point,
        scale=scale,
        lstm_eligible=eligible,
        champion=fate,
        recalibrated=recalibrated,
        lstm_scale=lstm_scale,
        lstm_recalibrated=lstm_recal,
        alpha=alpha,
        evidence=_evidence_dict(evidence, tests, verdict, min_windows, margin),
        global_eligible=global_eligible,
    )


def _promotion(
    policy: PromotionPolicy,
    eligible: bool,
    network: bool,
    verdict: _ChampionVerdict,
    *,
    has_lstm: bool,
) -> tuple[bool, str]:
    """Whether the challenger's artifact becomes champion, and why, in words. ``network``: the
    best evidence-backed candidate needs the network (its point, or its volatility head)."""
    no_evidence = (False, "the LSTM does not beat both naive and drift (one-sided DM)")
    volatility = (
        True,
        "the LSTM does not beat both naive and drift (one-sided DM), but its volatility head "
        "gives the simple forecast the lowest interval score",
    )
    if not has_lstm:
        outcome = (False, "no LSTM challenger was scored")
    elif policy is PromotionPolicy.ALWAYS:
        outcome = (True, "policy 'always' promotes every challenger")
    elif verdict.fate in ("none", "demoted"):
        if policy is PromotionPolicy.BEAT_CHAMPION:
            outcome = (True, "policy 'beat_champion': no champion stands in the way")
        elif eligible:
            outcome = (True, "the LSTM beats both naive and drift (one-sided DM)")
        else:
            outcome = volatility if network else no_evidence
    elif verdict.challenger_better is None:
        outcome = (False, "the champion stays until it has enough new windows to be judged on")
    elif policy is PromotionPolicy.EVIDENCE and not network:
        outcome = no_evidence
    elif verdict.challenger_better:
        outcome = (True, "the challenger beats the champion out of sample by the margin")
    else:
        outcome = (False, "the challenger does not beat the champion out of sample by the margin")
    return outcome


def _reason(
    why: str,
    *,
    verdict: _ChampionVerdict,
    selected: str,
    recalibrated: bool,
    tests: Mapping[str, Any],
    alpha: float,
) -> str:
    parts = [why]
    for point, label in (("lstm", "LSTM"), (GLOBAL_POINT, "global LSTM")):
        if f"{point}_vs_naive" not in tests:
            continue
        p_naive = tests[f"{point}_vs_naive"]["p_one_sided_better"]
        p_drift = tests[f"{point}_vs_drift"]["p_one_sided_better"]
        parts.append(
            f"DM one-sided p ({label} better): vs naive {_p(p_naive)}, vs drift {_p(p_drift)}, "
            f"alpha {_p(alpha)}"
        )
    if verdict.reason:
        parts.append(verdict.reason)
    served = "the champion stays" if selected == "champion" else f"serving {selected}"
    if recalibrated:
        served += (
            " with intervals recalibrated on its out-of-sample backtest scores (every candidate "
            "failed Kupiec's test at 1%)"
        )
    parts.append(served)
    return "; ".join(parts)


def _evidence_dict(
    evidence: GateEvidence,
    tests: Mapping[str, Any],
    verdict: _ChampionVerdict,
    min_windows: int,
    margin: float,
) -> dict[str, Any]:
    means = {point: float(np.mean(loss)) for point, loss in evidence.point_losses.items()}
    return {
        "loss": "squared error of the cumulative log return (percent^2), mean over the steps",
        "windows": len(evidence.origin_dates),
        "mean_point_loss": {k: v if math.isfinite(v) else None for k, v in means.items()},
        "dm_squared_error": dict(tests),
        "champion": {
            "windows_after_training": verdict.windows,
            "served_point": evidence.champion.point if evidence.champion else None,
            "min_windows": min_windows,
            "margin": margin,
            **verdict.tests,
        },
        "interval_score": evidence.interval_scores,
        "kupiec_min_p": {k: {"80": v[0], "95": v[1]} for k, v in evidence.kupiec_min_p.items()},
    }
