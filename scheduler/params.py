"""The parameters of a retrain job, validated again by the worker (the API validated them too, but
a job's kwargs come out of a shared table that anything with database access can write)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Final

from forecasting.promotion import PromotionPolicy

MODEL_NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_INT_BOUNDS: Final = {
    "epochs": (1, 500),
    "batch_size": (1, 4096),
    "horizon": (1, 30),
    "lookback": (5, 500),
    "folds": (1, 20),
}
KNOWN_PARAMS: Final = frozenset(
    {"model_name", "start_date", "end_date", "policy", "initial", *_INT_BOUNDS}
)


class InvalidRetrainParamsError(ValueError):
    """A retrain parameter that is missing its shape or out of range; names the parameter."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"retrain parameter {name!r}: {problem}")
        self.name = name
        self.problem = problem


def _int(name: str, value: object) -> int:
    low, high = _INT_BOUNDS[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRetrainParamsError(name, "expected an integer")
    if not low <= value <= high:
        raise InvalidRetrainParamsError(name, f"expected {low} to {high}, got {value}")
    return value


def _date(name: str, value: object) -> date:
    if not isinstance(value, str):
        raise InvalidRetrainParamsError(name, "expected an ISO date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRetrainParamsError(name, "expected an ISO date (YYYY-MM-DD)") from None


@dataclass(frozen=True, kw_only=True)
class RetrainParams:
    """Everything optional: the symbol's settings and the worker's training defaults fill gaps."""

    model_name: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    epochs: int | None = None
    batch_size: int | None = None
    horizon: int | None = None
    lookback: int | None = None
    folds: int | None = None
    policy: PromotionPolicy | None = None
    initial: bool = False

    def __post_init__(self) -> None:
        if self.model_name is not None and not MODEL_NAME_PATTERN.fullmatch(self.model_name):
            raise InvalidRetrainParamsError(
                "model_name", "1-64 characters of letters, digits, '_', '.', '-'"
            )
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise InvalidRetrainParamsError("start_date", "is after end_date")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> RetrainParams:
        """Parse the JSON ``params`` kwarg of a retrain job; unknown keys are refused."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise InvalidRetrainParamsError("params", "expected an object")
        unknown = sorted(set(raw) - KNOWN_PARAMS)
        if unknown:
            raise InvalidRetrainParamsError(unknown[0], "unknown parameter")
        given = {name: value for name, value in raw.items() if value is not None}
        values: dict[str, Any] = {}
        for name, value in given.items():
            if name in _INT_BOUNDS:
                values[name] = _int(name, value)
            elif name in ("start_date", "end_date"):
                values[name] = _date(name, value)
            else:
                values[name] = _PARSERS[name](value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, without the parameters that were not given."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if value is None or (key == "initial" and not value):
                continue
            out[key] = _json_value(value)
        return out


def _json_value(value: object) -> object:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, PromotionPolicy):
        return value.value
    return value


def _model_name(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidRetrainParamsError("model_name", "expected a string")
    return value


def _policy(value: object) -> PromotionPolicy:
    choices = ", ".join(policy.value for policy in PromotionPolicy)
    if not isinstance(value, str):
        raise InvalidRetrainParamsError("policy", f"expected one of {choices}")
    try:
        return PromotionPolicy(value)
    except ValueError:
        raise InvalidRetrainParamsError("policy", f"expected one of {choices}") from None


def _initial(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidRetrainParamsError("initial", "expected true or false")
    return value


_PARSERS: Final = {"model_name": _model_name, "policy": _policy, "initial": _initial}
