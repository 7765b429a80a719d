"""Conformal prediction intervals: split conformal (per-step half-widths from held-out
residuals), and normalised scores with adaptive conformal inference for intervals that follow the
market's volatility and keep their coverage when it changes.

Given absolute residuals ``|y - yhat|`` of ``n`` held-out forecasts (never the training windows),
the ``ceil((n + 1) * level)``-th smallest residual of each horizon step is a half-width ``q`` such
that ``[yhat - q, yhat + q]`` covers a new, exchangeable observation with probability at least
``level`` (Vovk, Gammerman & Shafer 2005; Lei, G'Sell, Rinaldo, Tibshirani & Wasserman 2018,
"Distribution-free predictive inference for regression", section 2.2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike

from forecasting.errors import PortableError
from forecasting.metrics import FloatArray, MetricInputError, as_float_array

#: The interval levels the service publishes: 80 % and 95 %.
LEVELS: Final = (0.8, 0.95)

# (n + 1) * level in binary floating point can land a hair above an integer (100 * 0.07 gives
# 7.000000000000001), which would push the rank one residual too far; this absorbs that.
_RANK_TOLERANCE: Final = 1e-9


def conformal_rank(n: int, level: float) -> int:
    """The 1-based rank ``ceil((n + 1) * level)`` of the residual that bounds ``level`` coverage.

    A rank above ``n`` means ``n`` calibration residuals cannot bound that level (for 95 % one
    needs ``n >= 19``); :func:`conformal_quantiles` then returns an infinite half-width.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise MetricInputError("n", f"must be a positive integer, got {n!r}")
    return max(1, math.ceil((n + 1) * _level_value(level) - _RANK_TOLERANCE))


def _level_value(level: float) -> float:
    """``level`` as a float in (0, 1); numpy scalars pass, booleans and strings do not."""
    try:
        value = math.nan if isinstance(level, bool | str | bytes) else float(level)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 < value < 1.0:
        raise MetricInputError("level", f"must be strictly between 0 and 1, got {level!r}")
    return value


def conformal_quantiles(
    abs_residuals: ArrayLike, levels: Sequence[float] = LEVELS
) -> dict[float, FloatArray]:
    """Per-step split-conformal half-widths for each level.

    ``abs_residuals`` has shape ``(n, H)``: ``n`` calibration forecasts, ``H`` horizon steps, each
    entry ``|actual - predicted|`` (non-negative, finite). Returns ``{level: array of shape (H,)}``
    holding, per column, the ``ceil((n + 1) * level)``-th smallest residual, or ``inf`` where that
    rank exceeds ``n``. Steps are calibrated separately because errors grow with the horizon.
    """
    residuals = as_float_array("abs_residuals", abs_residuals)
    if residuals.ndim != 2:
        raise MetricInputError(
            "abs_residuals", f"must be 2-D (n forecasts, H steps), got shape {residuals.shape}"
        )
    if (residuals < 0.0).any():
        raise MetricInputError("abs_residuals", "contains negative values: pass |actual - pred|")
    if len(levels) == 0:
        raise MetricInputError("levels", "is empty")
    n, steps = residuals.shape
    ordered = np.sort(residuals, axis=0)
    quantiles: dict[float, FloatArray] = {}
    for level in levels:
        key = _level_value(level)
        rank = conformal_rank(n, key)
        if rank > n:
            quantiles[key] = np.full(steps, np.inf, dtype=np.float64)
        else:
            quantiles[key] = ordered[rank - 1].copy()
    return quantiles


# ------------------------------------------------------------------ adaptive conformal inference

#: Central interval levels a calibration state tracks: the published 80% and 95%, and the grid
#: whose quantiles give the pinball loss and the CRPS (0.1 .. 0.9 central = quantiles 0.05 .. 0.95).
TRACKED_LEVELS: Final = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
#: Most recent matured scores kept per horizon step (chosen on simulated GARCH series, see
#: ``bench/aci_tuning.py``; fixed before any real series was scored).
DEFAULT_WINDOW: Final = 250
#: ACI step size (Gibbs & Candes 2021 use 0.005; chosen with the window, same experiment).
DEFAULT_GAMMA: Final = 0.005
#: When ``alpha_t`` asks for more than the window can bound, the largest score times this.
SAFETY_FACTOR: Final = 1.25


class InvalidCalibrationStateError(PortableError, ValueError):
    """A stored calibration state that cannot be used; says what is wrong with it."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"invalid calibration state: {problem}")
        self.problem = problem


@dataclass(frozen=True, kw_only=True)
class MaturedOutcome:
    """A forecast whose target has been observed: its horizon ``step`` (1-based), its normalised
    score ``|r - m| / s``, and whether it fell outside the interval issued at each tracked level."""

    step: int
    score: float
    missed: tuple[bool, ...]


@dataclass(frozen=True, kw_only=True)
class CalibrationState:
    """Online conformal calibration, one per served candidate, plain JSON so it can be stored.

    Per horizon step it keeps the ``window`` most recent matured normalised scores and, per tracked
    level, the miscoverage ``alpha_t`` of adaptive conformal inference (Gibbs & Candes 2021):
    ``alpha_{t+1} = alpha_t + gamma * (alpha - err_t)``, ``err_t`` = 1 when the outcome fell
    outside the interval issued for it. Feedback is delayed by construction: a step-h outcome
    matures h sessions after its forecast, and only then is it passed to :meth:`update`.
    ``alpha_t`` is kept in [0, 1]; at 0 the interval is the largest score in the window times
    :data:`SAFETY_FACTOR` (never infinite). ``source`` says where the scores came from: the
    model's calibration split, or (``"backtest"``) its out-of-sample backtest scores after the
    calibration split's intervals failed the coverage test.
    """

    levels: tuple[float, ...]
    window: int
    gamma: float
    scores: tuple[tuple[float, ...], ...]
    alphas: tuple[tuple[float, ...], ...]
    matured: int = 0
    source: str = "calibration"

    def __post_init__(self) -> None:
        if not self.levels or list(self.levels) != sorted(set(self.levels)):
            raise InvalidCalibrationStateError("levels must be distinct and ascending")
        for level in self.levels:
            _level_value(level)
        if not 1 <= self.window <= 100_000:
            raise InvalidCalibrationStateError(f"window {self.window} is out of range")
        if not 0.0 <= self.gamma <= 1.0:
            raise InvalidCalibrationStateError(f"gamma {self.gamma} is out of range")
        if not self.scores or len(self.scores) != len(self.alphas):
            raise InvalidCalibrationStateError("needs one score window and one alpha row per step")
        for step, (window, alphas) in enumerate(zip(self.scores, self.alphas, strict=True)):
            if not window or len(window) > self.window:
                raise InvalidCalibrationStateError(f"step {step + 1} holds {len(window)} scores")
            if not all(math.isfinite(s) and s >= 0.0 for s in window):
                raise InvalidCalibrationStateError(f"step {step + 1} holds a bad score")
            if len(alphas) != len(self.levels) or not all(0.0 <= a <= 1.0 for a in alphas):
                raise InvalidCalibrationStateError(f"step {step + 1} has bad alphas {alphas}")

    @classmethod
    def initial(
        cls,
        scores: ArrayLike,
        *,
        levels: Sequence[float] = TRACKED_LEVELS,
        window: int = DEFAULT_WINDOW,
        gamma: float = DEFAULT_GAMMA,
        source: str = "calibration",
    ) -> CalibrationState:
        """A state from ``(n, H)`` normalised calibration scores (time order; the last ``window``
        are kept), every ``alpha_t`` at its nominal ``1 - level``."""
        values = as_float_array("scores", scores)
        if values.ndim != 2 or values.shape[0] == 0:
            raise MetricInputError("scores", f"must be 2-D (n, H), got shape {values.shape}")
        if (values < 0.0).any():
            raise MetricInputError("scores", "contains negative values")
        ordered = tuple(sorted(float(level) for level in levels))
        kept = values[-window:]
        return cls(
            levels=ordered,
            window=window,
            gamma=gamma,
            scores=tuple(tuple(float(v) for v in kept[:, h]) for h in range(values.shape[1])),
            alphas=tuple(tuple(1.0 - level for level in ordered) for _ in range(values.shape[1])),
            source=source,
        )

    @property
    def horizon(self) -> int:
        return len(self.scores)

    def quantiles(self, step: int) -> FloatArray:
        """The normalised half-width at each tracked level for a new ``step``-ahead forecast:
        the conformal rank ``ceil((n + 1)(1 - alpha_t))`` of the window, made non-decreasing in
        the level (a wider level never gets a narrower interval)."""
        return np.asarray(_half_width_row(self.scores[step - 1], self.alphas[step - 1]))

    def half_widths(self) -> dict[float, FloatArray]:
        """``{level: normalised half-width per step, shape (H,)}`` for a new forecast."""
        table = np.vstack([self.quantiles(step) for step in range(1, self.horizon + 1)])
        return {level: table[:, k].copy() for k, level in enumerate(self.levels)}

    def outcome(self, step: int, score: float, issued: ArrayLike) -> MaturedOutcome:
        """A matured forecast: ``issued`` are the half-widths it was given, per tracked level."""
        bounds = np.asarray(issued, dtype=np.float64).reshape(-1)
        if bounds.size != len(self.levels):
            raise MetricInputError("issued", f"needs {len(self.levels)} half-widths")
        return MaturedOutcome(
            step=step, score=float(score), missed=tuple(bool(score > q) for q in bounds)
        )

    def update(self, outcomes: Sequence[MaturedOutcome]) -> CalibrationState:
        """The state after these matured outcomes (in the order they matured)."""
        scores = [list(window) for window in self.scores]
        alphas = [list(row) for row in self.alphas]
        targets = [1.0 - level for level in self.levels]
        for outcome in outcomes:
            if not 1 <= outcome.step <= self.horizon:
                raise MetricInputError("step", f"must be 1..{self.horizon}, got {outcome.step}")
            if not math.isfinite(outcome.score) or outcome.score < 0.0:
                raise MetricInputError("score", f"must be finite and >= 0, got {outcome.score}")
            if len(outcome.missed) != len(self.levels):
                raise MetricInputError("missed", f"needs {len(self.levels)} values")
            index = outcome.step - 1
            scores[index].append(outcome.score)
            del scores[index][: -self.window]
            alphas[index] = [
                min(1.0, max(0.0, a + self.gamma * (target - float(miss))))
                for a, target, miss in zip(alphas[index], targets, outcome.missed, strict=True)
            ]
        return replace(
            self,
            scores=tuple(tuple(window) for window in scores),
            alphas=tuple(tuple(row) for row in alphas),
            matured=self.matured + len(outcomes),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "levels": list(self.levels),
            "window": self.window,
            "gamma": self.gamma,
            "scores": [list(window) for window in self.scores],
            "alphas": [list(row) for row in self.alphas],
            "matured": self.matured,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibrationState:
        try:
            return cls(
                levels=tuple(float(v) for v in data["levels"]),
                window=int(data["window"]),
                gamma=float(data["gamma"]),
                scores=tuple(tuple(float(v) for v in row) for row in data["scores"]),
                alphas=tuple(tuple(float(v) for v in row) for row in data["alphas"]),
                matured=int(data.get("matured", 0)),
                source=str(data.get("source", "calibration")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidCalibrationStateError):
                raise
            raise InvalidCalibrationStateError(f"unreadable ({exc!r})") from None


def _half_width_row(window: Sequence[float], alphas: Sequence[float]) -> list[float]:
    """:meth:`CalibrationState.quantiles` of one step's score window, in plain floats (the
    adaptive loop calls it once per origin and step: numpy's per-call cost dominated there)."""
    ordered = sorted(window)
    n = len(ordered)
    ceiling = ordered[-1] * SAFETY_FACTOR
    row: list[float] = []
    running = -math.inf
    for alpha in alphas:
        rank = math.ceil((n + 1) * (1.0 - alpha) - _RANK_TOLERANCE)
        value = ceiling if rank > n else ordered[min(max(rank, 1), n) - 1]
        running = max(running, value)
        row.append(running)
    return row


def run_adaptive(
    state: CalibrationState, scores: ArrayLike, *, drain: bool = False
) -> tuple[npt.NDArray[np.float64], CalibrationState]:
    """Issue half-widths origin by origin over consecutive daily origins, as the service would.

    ``scores`` (n, H): the normalised score of each origin's forecast, known only once it matures:
    origin ``i``'s step ``h`` is fed back just before origin ``i + h`` is forecast, never earlier.
    With ``drain`` the outcomes that mature after the last origin are fed at the end too (in the
    order they mature), for a state that has seen everything observed so far.
    Returns the issued half-widths, shape (n, H, levels), and the final state.
    """
    values = as_float_array("scores", scores)
    if values.ndim != 2 or values.shape[1] != state.horizon:
        raise MetricInputError("scores", f"must be (n, {state.horizon}), got {values.shape}")
    n, horizon = values.shape
    if not np.isfinite(values).all() or (values < 0.0).any():
        raise MetricInputError("scores", "must be finite and >= 0")
    issued = np.empty((n, horizon, len(state.levels)))
    # The loop keeps the state in mutable lists and applies :meth:`CalibrationState.update`'s
    # arithmetic in place (the same floats in the same order); one state is built at the end.
    windows = [list(window) for window in state.scores]
    alphas = [list(row) for row in state.alphas]
    targets = [1.0 - level for level in state.levels]
    fed = 0

    def feed(i: int) -> None:
        """The outcomes that mature just before origin ``i`` is forecast, step by step."""
        nonlocal fed
        for h in range(1, horizon + 1):
            j = i - h
            if not 0 <= j < n:
                continue
            score = float(values[j, h - 1])
            missed = [score > float(bound) for bound in issued[j, h - 1]]
            window = windows[h - 1]
            window.append(score)
            del window[: -state.window]
            alphas[h - 1] = [
                min(1.0, max(0.0, a + state.gamma * (target - float(miss))))
                for a, target, miss in zip(alphas[h - 1], targets, missed, strict=True)
            ]
            fed += 1

    for i in range(n):
        feed(i)
        for h in range(1, horizon + 1):
            issued[i, h - 1] = _half_width_row(windows[h - 1], alphas[h - 1])
    if drain:
        for i in range(n, n + horizon):
            feed(i)
    final = replace(
        state,
        scores=tuple(tuple(window) for window in windows),
        alphas=tuple(tuple(row) for row in alphas),
        matured=state.matured + fed,
    )
    return issued, final
