"""The promotion gate under each policy, its reasons, and its refusal of broken figures."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from forecasting.metrics import MetricInputError
from forecasting.promotion import (
    DEFAULT_ALPHA,
    DEFAULT_POLICY,
    PromotionDecision,
    PromotionPolicy,
    UnknownPolicyError,
    decide_promotion,
    parse_policy,
)

GATE = PromotionPolicy.NOT_WORSE_THAN_NAIVE


def test_policy_values_and_defaults() -> None:
    assert [policy.value for policy in PromotionPolicy] == [
        "always",
        "beat_champion",
        "not_worse_than_naive",
    ]
    assert DEFAULT_POLICY is PromotionPolicy.NOT_WORSE_THAN_NAIVE
    assert DEFAULT_ALPHA == 0.05


# ---------------------------------------------------------------- not_worse_than_naive


def test_significantly_worse_than_naive_is_rejected_with_the_figures() -> None:
    decision = decide_promotion(
        GATE, challenger_mase=1.2, dm_p_value_worse_than_naive=0.003, champion_mase=None
    )
    assert not decision.promote
    assert decision.reason == "significantly worse than naive: DM p=0.003 < 0.05"
    assert decision.policy is GATE


def test_not_significantly_worse_and_no_champion_is_promoted() -> None:
    decision = decide_promotion(
        GATE, challenger_mase=1.02, dm_p_value_worse_than_naive=0.41, champion_mase=None
    )
    assert decision.promote
    assert "DM p=0.41 >= 0.05" in decision.reason
    assert "no champion yet" in decision.reason


def test_p_value_equal_to_alpha_is_not_a_rejection() -> None:
    # the gate rejects on p < alpha, so p == alpha passes
    decision = decide_promotion(
        GATE, challenger_mase=1.0, dm_p_value_worse_than_naive=0.05, champion_mase=None
    )
    assert decision.promote


def test_alpha_is_honoured() -> None:
    strict = decide_promotion(
        GATE, challenger_mase=1.0, dm_p_value_worse_than_naive=0.03, champion_mase=None, alpha=0.01
    )
    assert strict.promote
    lenient = decide_promotion(
        GATE, challenger_mase=1.0, dm_p_value_worse_than_naive=0.03, champion_mase=None, alpha=0.1
    )
    assert not lenient.promote
    assert "DM p=0.03 < 0.1" in lenient.reason


def test_higher_mase_than_the_champion_is_rejected() -> None:
    decision = decide_promotion(
        GATE, challenger_mase=1.05, dm_p_value_worse_than_naive=0.6, champion_mase=1.01
    )
    assert not decision.promote
    assert decision.reason == "MASE 1.05 is worse than the champion's 1.01"


def test_equal_or_lower_mase_than_the_champion_is_promoted() -> None:
    tie = decide_promotion(
        GATE, challenger_mase=0.98, dm_p_value_worse_than_naive=0.6, champion_mase=0.98
    )
    assert tie.promote
    assert "MASE 0.98 not worse than the champion's 0.98" in tie.reason
    better = decide_promotion(
        GATE, challenger_mase=0.95, dm_p_value_worse_than_naive=0.6, champion_mase=0.98
    )
    assert better.promote


def test_both_failures_are_reported() -> None:
    decision = decide_promotion(
        GATE, challenger_mase=1.3, dm_p_value_worse_than_naive=0.0004, champion_mase=1.1
    )
    assert not decision.promote
    assert decision.reason == (
        "significantly worse than naive: DM p=0.0004 < 0.05; "
        "MASE 1.3 is worse than the champion's 1.1"
    )


def test_close_figures_are_printed_with_enough_digits_to_differ() -> None:
    # to 4 significant digits both are "1.013": the reason must still show which is higher
    decision = decide_promotion(
        GATE, challenger_mase=1.01304, dm_p_value_worse_than_naive=0.5, champion_mase=1.01296
    )
    assert not decision.promote
    assert decision.reason == "MASE 1.01304 is worse than the champion's 1.01296"


# ---------------------------------------------------------------- beat_champion and always


def test_beat_champion_needs_a_strictly_lower_mase() -> None:
    def decide(champion: float | None) -> PromotionDecision:
        return decide_promotion(
            "beat_champion",
            challenger_mase=0.9,
            dm_p_value_worse_than_naive=0.5,
            champion_mase=champion,
        )

    assert decide(None).promote
    assert "no champion yet" in decide(None).reason
    assert decide(0.95).promote
    assert decide(0.95).reason == "MASE 0.9 beats the champion's 0.95"
    assert not decide(0.9).promote
    assert decide(0.9).reason == "MASE 0.9 does not beat the champion's 0.9"
    assert not decide(0.85).promote
    assert decide(0.85).policy is PromotionPolicy.BEAT_CHAMPION


def test_beat_champion_does_not_consult_the_naive_test() -> None:
    decision = decide_promotion(
        PromotionPolicy.BEAT_CHAMPION,
        challenger_mase=0.9,
        dm_p_value_worse_than_naive=0.001,
        champion_mase=1.0,
    )
    assert decision.promote


def test_always_promotes_even_a_bad_challenger() -> None:
    decision = decide_promotion(
        PromotionPolicy.ALWAYS,
        challenger_mase=3.0,
        dm_p_value_worse_than_naive=0.0,
        champion_mase=0.5,
    )
    assert decision.promote
    assert "always" in decision.reason
    assert "MASE 3" in decision.reason


# ---------------------------------------------------------------- serialisation and parsing


def test_to_dict_is_json_safe_and_keeps_the_figures() -> None:
    decision = decide_promotion(
        GATE, challenger_mase=1.2, dm_p_value_worse_than_naive=0.003, champion_mase=1.1
    )
    payload = json.loads(json.dumps(decision.to_dict(), allow_nan=False))
    assert payload == {
        "promote": False,
        "reason": decision.reason,
        "policy": "not_worse_than_naive",
        "challenger_mase": 1.2,
        "champion_mase": 1.1,
        "dm_p_value_worse_than_naive": 0.003,
        "alpha": 0.05,
    }


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("always", PromotionPolicy.ALWAYS),
        (" Beat_Champion ", PromotionPolicy.BEAT_CHAMPION),
        ("NOT_WORSE_THAN_NAIVE", PromotionPolicy.NOT_WORSE_THAN_NAIVE),
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
        f"unknown promotion policy {value!r}: "
        "expected one of always, beat_champion, not_worse_than_naive"
    )
    assert isinstance(caught.value, ValueError)
    with pytest.raises(UnknownPolicyError):
        decide_promotion(
            value, challenger_mase=1.0, dm_p_value_worse_than_naive=0.5, champion_mase=None
        )


@pytest.mark.parametrize(
    ("figures", "message"),
    [
        ({"challenger_mase": math.nan}, "challenger_mase: must be a finite number"),
        ({"challenger_mase": math.inf}, "challenger_mase: must be a finite number"),
        ({"challenger_mase": -0.1}, "challenger_mase: cannot be negative"),
        ({"challenger_mase": "1.0"}, "challenger_mase: must be a finite number"),
        ({"champion_mase": math.nan}, "champion_mase: must be a finite number"),
        ({"dm_p_value_worse_than_naive": math.nan}, "must be a number between 0 and 1"),
        ({"dm_p_value_worse_than_naive": 1.5}, "must be a number between 0 and 1"),
        ({"dm_p_value_worse_than_naive": -0.01}, "must be a number between 0 and 1"),
        ({"alpha": 0.0}, "alpha: must be a number strictly between 0 and 1"),
        ({"alpha": 1.0}, "alpha: must be a number strictly between 0 and 1"),
    ],
)
@pytest.mark.parametrize("policy", list(PromotionPolicy))
def test_broken_figures_are_refused_under_every_policy(
    policy: PromotionPolicy, figures: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {
        "challenger_mase": 1.0,
        "dm_p_value_worse_than_naive": 0.5,
        "champion_mase": 1.0,
    }
    arguments.update(figures)
    with pytest.raises(MetricInputError, match=message):
        decide_promotion(policy, **arguments)
