"""The promotion policies: the names settings, the scheduler and the API accept for the gate
(:mod:`forecasting.gate` makes the decisions)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from forecasting.errors import PortableError


class PromotionPolicy(StrEnum):
    """How the gate decides; ``evidence`` is the default."""

    #: Serve the LSTM only when the backtest shows it beats both naive and drift (one-sided DM at
    #: ``alpha``) and, against a champion, beats it out of sample by a margin; otherwise serve the
    #: best simple model. The champion is re-tested on windows after its own training data.
    EVIDENCE = "evidence"
    #: Promote the challenger when it beats the champion out of sample by the margin, or when
    #: there is no champion, without asking it to beat naive and drift (for experiments).
    BEAT_CHAMPION = "beat_champion"
    #: Every challenger becomes champion (for experiments; the figures are still recorded).
    ALWAYS = "always"


DEFAULT_POLICY: Final = PromotionPolicy.EVIDENCE
DEFAULT_ALPHA: Final = 0.05
#: Policies that no longer exist, and what replaced them.
_RETIRED: Final = {
    "not_worse_than_naive": "its burden of proof was backwards (a model was served unless shown "
    "to be worse than naive); 'evidence' serves it only when shown to be better",
}


class UnknownPolicyError(PortableError, ValueError):
    """A promotion policy name that is not one of :class:`PromotionPolicy`."""

    def __init__(self, value: object) -> None:
        choices = ", ".join(policy.value for policy in PromotionPolicy)
        message = f"unknown promotion policy {value!r}: expected one of {choices}"
        retired = _RETIRED.get(str(value).strip().lower()) if isinstance(value, str) else None
        if retired:
            message += f" ({value!r} was retired: {retired})"
        super().__init__(message)
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
