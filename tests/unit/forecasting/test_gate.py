"""The gate on constructed evidence: the LSTM is served only when it beats both naive and drift,
intervals that fail Kupiec's test are never served as they are, the champion is judged only on
windows after its own training data and demoted when it fails there, and the policy names."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from forecasting.gate import ChampionEvidence, GateDecision, GateEvidence, choose_scale, decide
from forecasting.metrics import MetricInputError
from forecasting.promotion import (
    DEFAULT_POLICY,
    PromotionPolicy,
    UnknownPolicyError,
    parse_policy,
)

N = 250
HORIZON = 5
DATES = tuple(date(2024, 1, 1) + timedelta(days=k) for k in range(N))
GOOD = (0.5, 0.5)


def _losses(seed: int, factor: float = 1.0) -> np.ndarray[Any, Any]:
    """Squared-error-like losses: chi-squared draws, scaled."""
    return factor * np.random.default_rng(seed).chisquare(1, N)


def evidence(
    *,
    lstm: float = 1.0,
    drift: float = 1.0,
    interval_scores: dict[str, float] | None = None,
    kupiec: dict[str, tuple[float, float]] | None = None,
    champion: np.ndarray[Any, Any] | None = None,
    champion_end: date | None = None,
    interval_losses: dict[str, np.ndarray[Any, Any]] | None = None,
    champion_intervals: np.ndarray[Any, Any] | None = None,
    champion_point: str = "lstm",
) -> GateEvidence:
    """Naive's losses are chi-squared noise; drift and the LSTM are naive's losses times a
    factor plus a little noise of their own (1 = as good as naive). Interval losses are constant
    at the given mean scores unless given in full."""
    naive = _losses(1)
    scores = interval_scores or {
        f"{p}+{s}": 10.0
        for p in ("naive", "drift", "lstm")
        for s in ("ewma", "ewma_shrunk", "garch_t", "lstm_t")
    }
    losses = interval_losses or {name: np.full(N, score) for name, score in scores.items()}
    return GateEvidence(
        horizon=HORIZON,
        origin_dates=DATES,
        point_losses={
            "naive": naive,
            "drift": naive * drift + _losses(2, 0.01),
            "lstm": naive * lstm + _losses(3, 0.01),
        },
        interval_losses=losses,
        kupiec_min_p=kupiec or dict.fromkeys(losses, GOOD),
        champion=None
        if champion is None
        else ChampionEvidence(
            data_end=champion_end,
            point=champion_point,
            point_losses=champion,
            interval_losses=champion_intervals,
        ),
    )


def test_default_policy_is_the_evidence_gate() -> None:
    assert DEFAULT_POLICY is PromotionPolicy.EVIDENCE
    assert [p.value for p in PromotionPolicy] == ["evidence", "beat_champion", "always"]


def test_an_lstm_that_beats_naive_and_drift_is_served() -> None:
    decision = decide(evidence(lstm=0.7))
    assert decision.promote and decision.lstm_eligible
    assert decision.point == "lstm" and decision.selected.startswith("lstm+")
    tests = decision.evidence["dm_squared_error"]
    assert tests["lstm_vs_naive"]["p_one_sided_better"] < 0.05
    assert tests["lstm_vs_drift"]["p_one_sided_better"] < 0.05


def test_a_tie_with_naive_is_not_evidence() -> None:
    """The old gate promoted unless the model was significantly worse; a tie is not enough."""
    decision = decide(evidence(lstm=1.0, drift=1.02))
    assert not decision.promote and not decision.lstm_eligible
    assert decision.selected == "naive+ewma"  # naive's mean loss is the lower; ties pick ewma
    assert "does not beat both naive and drift" in decision.reason
    assert "DM one-sided p (LSTM better)" in decision.reason


def test_beating_naive_is_not_enough_when_drift_is_as_good() -> None:
    decision = decide(evidence(lstm=0.8, drift=0.8))
    assert decision.evidence["dm_squared_error"]["lstm_vs_naive"]["p_one_sided_better"] < 0.05
    assert decision.evidence["dm_squared_error"]["lstm_vs_drift"]["p_one_sided_better"] > 0.05
    assert not decision.promote
    assert decision.point in ("naive", "drift")


def test_the_scale_with_the_lowest_interval_score_that_passes_kupiec_is_served() -> None:
    scores = {"naive+ewma": 9.0, "naive+garch_t": 8.0, "drift+ewma": 9.5, "drift+garch_t": 9.5}
    scores |= {"lstm+ewma": 9.0, "lstm+garch_t": 9.0}
    kupiec = dict.fromkeys(scores, GOOD) | {"naive+garch_t": (0.5, 0.001)}
    decision = decide(evidence(drift=1.05, interval_scores=scores, kupiec=kupiec))
    # garch's lower score does not count: its 95% intervals fail (0.001 < 0.01 / 5)
    assert decision.selected == "naive+ewma"
    assert not decision.recalibrated


def test_intervals_that_fail_kupiec_everywhere_are_served_recalibrated() -> None:
    scores = {"naive+ewma": 9.0, "naive+garch_t": 8.0, "drift+ewma": 9.0, "drift+garch_t": 9.0}
    kupiec = dict.fromkeys(scores, (0.0001, 0.5))
    decision = decide(
        GateEvidence(
            horizon=HORIZON,
            origin_dates=DATES,
            point_losses={"naive": _losses(1), "drift": _losses(1) * 1.1},
            interval_losses={name: np.full(N, score) for name, score in scores.items()},
            kupiec_min_p=kupiec,
        )
    )
    assert decision.selected == "naive+garch_t"
    assert decision.recalibrated
    assert "recalibrated" in decision.reason and "Kupiec" in decision.reason


def test_the_networks_volatility_head_is_served_with_a_simple_point_when_it_wins() -> None:
    """The LSTM's point has no evidence, but its Student-t scale gives naive the lowest interval
    score: the network is served for its volatility alone, labelled as such."""
    scores = {f"{p}+{s}": 10.0 for p in ("naive", "drift", "lstm") for s in ("ewma", "garch_t")}
    scores |= {"naive+lstm_t": 8.0, "drift+lstm_t": 8.0, "lstm+lstm_t": 8.0}
    ev = evidence(drift=1.05, interval_scores=scores)
    assert choose_scale("naive", ev) == ("lstm_t", False)
    assert choose_scale("naive", ev, network=False) == ("ewma", False)
    decision = decide(ev)
    assert not decision.lstm_eligible
    assert decision.promote and decision.selected == "naive+lstm_t"
    assert (decision.point, decision.scale) == ("naive", "lstm_t")
    assert "volatility head" in decision.reason


def test_without_a_network_the_networks_scale_is_never_chosen() -> None:
    scores = {"naive+ewma": 10.0, "naive+garch_t": 9.0, "drift+ewma": 10.0, "drift+garch_t": 9.5}
    decision = decide(
        GateEvidence(
            horizon=HORIZON,
            origin_dates=DATES,
            point_losses={"naive": _losses(1), "drift": _losses(1) * 1.1},
            interval_losses={name: np.full(N, score) for name, score in scores.items()},
            kupiec_min_p=dict.fromkeys(scores, GOOD),
        )
    )
    assert decision.selected == "naive+garch_t" and not decision.promote


def _champion_great_in_sample_bad_after(end: int) -> np.ndarray[Any, Any]:
    """Near-perfect on the windows it was trained on, much worse than naive after them."""
    naive = _losses(1)
    champion = naive * 2.0 + _losses(4, 0.01)
    champion[: end + 1] = naive[: end + 1] * 0.01
    return champion


def test_the_champion_is_judged_only_after_its_training_data_and_demoted() -> None:
    end = 150
    decision = decide(
        evidence(
            lstm=1.0,
            champion=_champion_great_in_sample_bad_after(end),
            champion_end=DATES[end],
        )
    )
    judged = decision.evidence["champion"]
    assert judged["windows_after_training"] == N - end - 1
    # over every window it would hold (its in-sample fit is near perfect); after them it fails
    assert judged["loss"] == "squared_error"
    retest = judged["champion_vs_naive"]
    assert retest["n"] == N - end - 1
    assert retest["p_one_sided_better"] > 0.5
    assert decision.champion == "demoted"
    assert not decision.promote  # the challenger has no evidence either
    assert decision.selected in ("naive+ewma", "drift+ewma")
    assert "no longer beats" in decision.reason


def test_a_champion_that_holds_on_new_windows_is_kept() -> None:
    naive = _losses(1)
    champion = naive * 0.6 + _losses(5, 0.01)
    decision = decide(evidence(lstm=1.0, champion=champion, champion_end=DATES[100]))
    assert decision.champion == "kept"
    assert decision.selected == "champion"
    assert not decision.promote


def test_too_few_new_windows_keep_the_champion_unjudged() -> None:
    champion = _champion_great_in_sample_bad_after(N - 11)
    decision = decide(evidence(lstm=0.5, champion=champion, champion_end=DATES[N - 11]))
    assert decision.champion == "kept"
    assert decision.evidence["champion"]["windows_after_training"] == 10
    assert "challenger_vs_champion" not in decision.evidence["champion"]
    assert not decision.promote
    assert "kept, not judged" in decision.reason


def test_a_challenger_must_beat_the_champion_out_of_sample_by_the_margin() -> None:
    naive = _losses(1)
    champion = naive * 0.6 + _losses(5, 0.01)
    barely = decide(evidence(lstm=0.598, champion=champion, champion_end=DATES[100]))
    comparison = barely.evidence["champion"]["challenger_vs_champion"]
    assert comparison["windows"] == N - 101
    assert comparison["challenger_mean_loss"] < comparison["champion_mean_loss"]
    assert not comparison["challenger_better"]  # less than 1% better
    assert not barely.promote and barely.selected == "champion"
    clearly = decide(evidence(lstm=0.5, champion=champion, champion_end=DATES[100]))
    assert clearly.promote and clearly.champion == "replaced"


def test_a_champion_serving_the_networks_volatility_is_judged_on_the_interval_score() -> None:
    end = 100
    after = N - end - 1
    scores = {f"{p}+{s}": 10.0 for p in ("naive", "drift", "lstm") for s in ("ewma", "garch_t")}
    rng = np.random.default_rng(8)
    losses = {name: 10.0 + rng.normal(0, 1, N) ** 2 for name in scores}
    # its intervals were good once; on the new windows they are 30% worse than naive+ewma's
    worse = 1.3 * losses["naive+ewma"][end + 1 :]
    decision = decide(
        evidence(
            drift=1.05,
            interval_losses=losses,
            champion=_losses(1),
            champion_end=DATES[end],
            champion_intervals=worse,
            champion_point="naive",
        )
    )
    judged = decision.evidence["champion"]
    assert judged["loss"] == "interval_score" and judged["served_point"] == "naive"
    assert judged["windows_after_training"] == after
    assert decision.champion == "demoted"
    assert "no longer beats" in decision.reason and "interval score" in decision.reason
    assert decision.selected.startswith("naive+")


def test_always_and_beat_champion() -> None:
    assert decide(evidence(lstm=1.3), PromotionPolicy.ALWAYS).promote
    no_champion = decide(evidence(lstm=1.3), "beat_champion")
    assert no_champion.promote and not no_champion.lstm_eligible
    naive = _losses(1)
    champion = naive * 0.6 + _losses(5, 0.01)
    kept = decide(evidence(lstm=0.7, champion=champion, champion_end=DATES[100]), "beat_champion")
    assert not kept.promote and kept.selected == "champion"


def test_decision_is_json_safe() -> None:
    decision = decide(evidence(lstm=0.7))
    payload = json.loads(json.dumps(decision.to_dict(), allow_nan=False))
    assert payload["policy"] == "evidence"
    assert payload["selected"] == decision.selected
    assert set(payload) >= {"promote", "reason", "point", "scale", "champion", "evidence"}
    assert isinstance(decision, GateDecision)


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("always", PromotionPolicy.ALWAYS),
        (" Beat_Champion ", PromotionPolicy.BEAT_CHAMPION),
        ("EVIDENCE", PromotionPolicy.EVIDENCE),
        (PromotionPolicy.ALWAYS, PromotionPolicy.ALWAYS),
    ],
)
def test_parse_policy(text: str, policy: PromotionPolicy) -> None:
    assert parse_policy(text) is policy


@pytest.mark.parametrize("value", ["", "best", "beat-champion", None, 3])
def test_unknown_policy_names_the_choices(value: Any) -> None:
    with pytest.raises(UnknownPolicyError) as caught:
        parse_policy(value)
    assert str(caught.value) == (
        f"unknown promotion policy {value!r}: expected one of evidence, beat_champion, always"
    )
    assert isinstance(caught.value, ValueError)


def test_the_retired_policy_says_why() -> None:
    with pytest.raises(UnknownPolicyError, match="retired: its burden of proof was backwards"):
        parse_policy("not_worse_than_naive")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"point_losses": {"naive": np.full(N, math.nan), "drift": _losses(2)}}, "contains NaN"),
        ({"point_losses": {"naive": _losses(1)[:10], "drift": _losses(2)}}, "one per origin"),
        ({"point_losses": {"naive": _losses(1)}}, "lacks drift"),
        ({"interval_losses": {"naive+ewma": np.full(N, math.inf)}}, "infinite"),
        ({"kupiec_min_p": {"naive+ewma": (1.5, 0.5)}}, "kupiec_min_p"),
        ({"kupiec_min_p": {}}, "same candidates"),
    ],
)
def test_broken_evidence_is_refused(change: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "horizon": HORIZON,
        "origin_dates": DATES,
        "point_losses": {"naive": _losses(1), "drift": _losses(2)},
        "interval_losses": {"naive+ewma": np.ones(N)},
        "kupiec_min_p": {"naive+ewma": GOOD},
    }
    arguments.update(change)
    with pytest.raises(MetricInputError, match=message):
        GateEvidence(**arguments)


def _with_global(base: GateEvidence, glstm: float) -> GateEvidence:
    """``base`` plus a global LSTM point (naive's losses times ``glstm``) and its candidates."""
    naive = base.point_losses["naive"]
    names = [f"glstm+{s}" for s in ("ewma", "ewma_shrunk", "garch_t")]
    losses = {**base.interval_losses, **{n: np.full(N, 10.0) for n in names}}
    return GateEvidence(
        horizon=HORIZON,
        origin_dates=DATES,
        point_losses={**base.point_losses, "glstm": naive * glstm + _losses(4, 0.01)},
        interval_losses=losses,
        kupiec_min_p=dict.fromkeys(losses, GOOD),
    )


def test_the_global_lstm_is_one_more_candidate() -> None:
    served = decide(_with_global(evidence(lstm=1.0), glstm=0.7))
    assert served.promote and served.global_eligible and not served.lstm_eligible
    assert served.point == "glstm" and served.selected.startswith("glstm+")
    assert served.scale != "lstm_t"  # another network's scale is never paired with it
    assert "global LSTM beats" in served.reason
    assert "glstm_vs_drift" in served.evidence["dm_squared_error"]
    # Both networks have evidence: the lower mean loss is served.
    assert decide(_with_global(evidence(lstm=0.6), glstm=0.7)).point == "lstm"
    assert decide(_with_global(evidence(lstm=0.7), glstm=0.6)).point == "glstm"
    # No evidence, no service.
    tie = decide(_with_global(evidence(lstm=1.0, drift=1.02), glstm=1.0))
    assert not tie.promote and not tie.global_eligible and tie.point == "naive"
