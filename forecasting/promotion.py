"""The promotion gate: when a freshly trained challenger may become a symbol's champion.

The gate reads two figures from the challenger's walk-forward backtest: its MASE, and the one-sided
Diebold-Mariano p-value of "the challenger is less accurate than the naive forecast"
(:func:`forecasting.metrics.diebold_mariano`). The champion's MASE, when there is one, must come
from the same windows, or the comparison means nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from forecasting.metrics import MetricInputError


class PromotionPolicy(StrEnum):
    """How strict the gate is; ``not_worse_than_naive`` is the default."""

    #: Every challenger becomes champion (for experiments; the figures are still recorded).
    ALWAYS = "always"
    #: Promote only on a strictly lower MASE than the champion's; the first model is promoted.
    BEAT_CHAMPION = "beat_champion"
    #: Refuse a challenger significantly worse than the naive forecast (one-sided DM test at
    #: ``alpha``) or with a higher MASE than the champion's.
    NOT_WORSE_THAN_NAIVE = "not_worse_than_naive"


DEFAULT_POLICY: Final = PromotionPolicy.NOT_WORSE_THAN_NAIVE
DEFAULT_ALPHA: Final = 0.05


class UnknownPolicyError(ValueError):
    """A promotion policy name that is not one of :class:`PromotionPolicy`."""

    def __init__(self, value: object) -> None:
        choices = ", ".join(policy.value for policy in PromotionPolicy)
        super().__init__(f"unknown promotion policy {value!r}: expected one of {choices}")
        self.value = value


def parse_policy(value: str | PromotionPolicy) -> PromotionPolicy:
    """``value`` as a :class:`PromotionPolicy` (case and surrounding blanks ignored), or raise
    :class:`UnknownPolicyError` naming the accepted values."""
    if isinstance(value, PromotionPolicy):
        return value
    if isinstance(value, str):
        try:
            return PromotionPolicy(value.strip().lower())
        except ValueError:
            pass
    raise UnknownPolicyError(value)


@dataclass(frozen=True, kw_only=True)
class PromotionDecision:
    """What the gate decided and why; ``reason`` names the figures it compared.

    The figures themselves are kept too, so an event or a database row can show them without
    parsing ``reason``.
    """

    promote: bool
    reason: str
    policy: PromotionPolicy
    challenger_mase: float | None = None
    champion_mase: float | None = None
    dm_p_value_worse_than_naive: float | None = None
    alpha: float = DEFAULT_ALPHA

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields, the policy as its string value."""
        return {
            "promote": self.promote,
            "reason": self.reason,
            "policy": self.policy.value,
            "challenger_mase": self.challenger_mase,
            "champion_mase": self.champion_mase,
            "dm_p_value_worse_than_naive": self.dm_p_value_worse_than_naive,
            "alpha": self.alpha,
        }


def _check_mase(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, float | int) or not math.isfinite(value):
        raise MetricInputError(name, f"must be a finite number, got {value!r}")
    if value < 0:
        raise MetricInputError(name, f"cannot be negative, got {value!r}")
    return float(value)


def _check_probability(name: str, value: float, *, open_interval: bool = False) -> float:
    valid = not isinstance(value, bool) and isinstance(value, float | int) and math.isfinite(value)
    if valid:
        valid = 0.0 < value < 1.0 if open_interval else 0.0 <= value <= 1.0
    if not valid:
        bounds = "strictly between 0 and 1" if open_interval else "between 0 and 1"
        raise MetricInputError(name, f"must be a number {bounds}, got {value!r}")
    return float(value)


def _format_pair(first: float, second: float) -> tuple[str, str]:
    """Both numbers to 4 significant digits, or more where 4 would print two different numbers
    the same (a rejection reading "MASE 1.013 is worse than 1.013" would baffle its reader)."""
    for digits in range(4, 18):
        shown = (f"{first:.{digits}g}", f"{second:.{digits}g}")
        if first == second or shown[0] != shown[1]:
            return shown
    return repr(first), repr(second)


def _format_p(value: float) -> str:
    return f"{value:.3g}"


def decide_promotion(
    policy: PromotionPolicy | str,
    *,
    challenger_mase: float,
    dm_p_value_worse_than_naive: float,
    champion_mase: float | None,
    alpha: float = DEFAULT_ALPHA,
) -> PromotionDecision:
    """Decide whether the challenger replaces the champion under ``policy``.

    ``not_worse_than_naive``: reject when ``dm_p_value_worse_than_naive < alpha`` (the backtest
    shows the challenger significantly less accurate than the naive forecast) or, if there is a
    champion, when the challenger's MASE is higher than the champion's; ties promote.
    ``beat_champion``: promote only when the challenger's MASE is strictly lower than the
    champion's, or when there is no champion. ``always``: promote.

    All figures are checked whatever the policy (NaN or out-of-range values raise
    :class:`~forecasting.metrics.MetricInputError`, a ``ValueError``),
    so a broken backtest cannot slip through an ``always`` gate unnoticed.
    """
    chosen = parse_policy(policy)
    challenger = _check_mase("challenger_mase", challenger_mase)
    champion = None if champion_mase is None else _check_mase("champion_mase", champion_mase)
    p_worse = _check_probability("dm_p_value_worse_than_naive", dm_p_value_worse_than_naive)
    level = _check_probability("alpha", alpha, open_interval=True)

    def decision(promote: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(
            promote=promote,
            reason=reason,
            policy=chosen,
            challenger_mase=challenger,
            champion_mase=champion,
            dm_p_value_worse_than_naive=p_worse,
            alpha=level,
        )

    if chosen is PromotionPolicy.ALWAYS:
        return decision(True, f"policy 'always' promotes every challenger (MASE {challenger:.4g})")

    if chosen is PromotionPolicy.BEAT_CHAMPION:
        if champion is None:
            return decision(True, f"no champion yet: promoted with MASE {challenger:.4g}")
        shown, shown_champion = _format_pair(challenger, champion)
        if challenger < champion:
            return decision(True, f"MASE {shown} beats the champion's {shown_champion}")
        return decision(False, f"MASE {shown} does not beat the champion's {shown_champion}")

    failures: list[str] = []
    if p_worse < level:
        failures.append(
            f"significantly worse than naive: DM p={_format_p(p_worse)} < {_format_p(level)}"
        )
    if champion is not None and challenger > champion:
        shown, shown_champion = _format_pair(challenger, champion)
        failures.append(f"MASE {shown} is worse than the champion's {shown_champion}")
    if failures:
        return decision(False, "; ".join(failures))

    naive_part = (
        f"not significantly worse than naive (DM p={_format_p(p_worse)} >= {_format_p(level)})"
    )
    if champion is None:
        champion_part = f"no champion yet (MASE {challenger:.4g})"
    else:
        shown, shown_champion = _format_pair(challenger, champion)
        champion_part = f"MASE {shown} not worse than the champion's {shown_champion}"
    return decision(True, f"{naive_part}; {champion_part}")
