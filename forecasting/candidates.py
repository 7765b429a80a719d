"""Candidates: a point model paired with a scale model, and how the two make intervals.

A candidate ``"<point>+<scale>"`` forecasts the cumulative log return ``r[t,h]`` with its point
model's ``m[t,h]`` and the interval ``m ± q * s``: ``s[t,h]`` the scale model's standard deviation
forecast, ``q`` a conformal quantile of the normalised scores ``|r - m| / s`` made adaptive by ACI
(:class:`forecasting.conformal.CalibrationState`). Prices follow as ``c * exp(m ± q s)``.

Point models: ``naive`` (0), ``drift`` (``h * mu``), ``lstm`` (the network's location). Scale
models: ``ewma``, ``ewma_shrunk``, ``garch_t`` (:mod:`forecasting.volatility`) and ``lstm_t``, the
LSTM's Student-t head, which pairs with every point model: the LSTM may earn its place as a volatility model even
where its location does not beat naive. References, scored the same way but never served:
``lstm+fixed`` (split conformal on the validation residuals, the intervals served before adaptive
calibration), ``naive+sigma60`` (normal quantiles times the 60-day standard deviation) and
``naive+garch_t_parametric`` (Student-t quantiles times the GARCH standard deviation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from forecasting.conformal import (
    TRACKED_LEVELS,
    CalibrationState,
    conformal_quantiles,
    run_adaptive,
)
from forecasting.metrics import FloatArray
from forecasting.scores import QUANTILE_GRID
from forecasting.volatility import ScaleModel, scale_from_dict, standardized_t_quantile

POINT_MODELS: Final = ("naive", "drift", "lstm")
#: The global LSTM's point (:mod:`forecasting.global_model`): scored and gated beside the others
#: when a backtest is given the global candidate. Served from a symbol's view of the global
#: artifact, where it is that artifact's own network, so its recipes say ``lstm``.
GLOBAL_POINT: Final = "glstm"
#: The point models a network makes: served only with DM evidence against both simple ones.
NETWORK_POINTS: Final = ("lstm", GLOBAL_POINT)
SCALE_MODELS: Final = ("ewma", "ewma_shrunk", "garch_t", "lstm_t")
#: The simple point models, one of which is served when the LSTM has no evidence for it.
SIMPLE_POINTS: Final = ("naive", "drift")
REFERENCES: Final = ("lstm+fixed", "naive+sigma60", "naive+garch_t_parametric")
#: The scale that needs the network: a candidate with it can only be served from an LSTM artifact.
NETWORK_SCALE: Final = "lstm_t"


def drift_slope(closes: FloatArray) -> float:
    """The drift model's slope: the mean daily log return of ``closes`` (data before the
    calibration split), so ``m[t,h] = h * slope``."""
    if closes.size < 2:
        return 0.0
    return float(np.log(closes[-1] / closes[0]) / (closes.size - 1))


def point_forecasts(point: str, count: int, horizon: int, slope: float = 0.0) -> FloatArray:
    """The naive (zeros) or drift (``h * slope``) cumulative log returns of ``count`` origins."""
    steps = np.arange(1, horizon + 1, dtype=np.float64) * (slope if point == "drift" else 0.0)
    result: FloatArray = np.tile(steps, (count, 1))
    return result


def candidate_name(point: str, scale: str) -> str:
    return f"{point}+{scale}"


def split_name(name: str) -> tuple[str, str]:
    point, _, scale = name.partition("+")
    return point, scale


@dataclass(frozen=True, kw_only=True)
class CandidateIntervals:
    """One candidate's forecasts over the backtest origins: centre ``m`` and scale ``s`` (n, H),
    and the half-widths issued at each of ``levels`` (n, H, levels), in log-return units."""

    name: str
    center: FloatArray
    sigma: FloatArray
    half: npt.NDArray[np.float64]
    levels: tuple[float, ...]

    def bounds(self, level: float) -> tuple[FloatArray, FloatArray]:
        half = self.half[:, :, self.levels.index(level)]
        return self.center - half, self.center + half

    def quantile_forecasts(self) -> dict[float, FloatArray]:
        """The predictive quantiles on :data:`~forecasting.scores.QUANTILE_GRID`: the median is
        the centre, level ``tau`` the bound of the central ``|2 tau - 1|`` interval."""
        out: dict[float, FloatArray] = {}
        for tau in QUANTILE_GRID:
            central = round(abs(2.0 * tau - 1.0), 6)
            if central == 0.0:
                out[tau] = self.center
                continue
            half = self.half[:, :, self.levels.index(central)]
            out[tau] = self.center + half if tau > 0.5 else self.center - half
        return out


def normalised_scores(
    actual: FloatArray, center: FloatArray | float, sigma: FloatArray
) -> FloatArray:
    """``|r - m| / s``, the conformity score every adaptive candidate is calibrated on."""
    scores: FloatArray = np.abs(actual - center) / sigma
    return scores


def adaptive_block(
    *,
    calibration: tuple[FloatArray, FloatArray, FloatArray],
    test: tuple[FloatArray, FloatArray, FloatArray],
    window: int,
    gamma: float,
) -> tuple[npt.NDArray[np.float64], CalibrationState]:
    """One fold of one adaptive candidate. ``calibration`` and ``test`` are ``(actual, center,
    sigma)`` arrays: the state starts from the calibration split's scores and learns from each
    test origin once it matures. Returns the issued half-widths (n, H, levels) in log-return
    units and the final state."""
    state = CalibrationState.initial(
        normalised_scores(*calibration), levels=TRACKED_LEVELS, window=window, gamma=gamma
    )
    actual, center, sigma = test
    issued, final = run_adaptive(state, normalised_scores(actual, center, sigma))
    return issued * sigma[:, :, None], final


def split_conformal_half(residuals: FloatArray, n_test: int) -> npt.NDArray[np.float64]:
    """The ``lstm+fixed`` reference: per-step split-conformal half-widths of the absolute
    validation residuals, the same for every test origin, shape (n_test, H, levels)."""
    table = conformal_quantiles(np.abs(residuals), TRACKED_LEVELS)
    per_level = np.stack([table[level] for level in TRACKED_LEVELS], axis=-1)
    return np.broadcast_to(per_level, (n_test, *per_level.shape)).copy()


def parametric_half(sigma: FloatArray, distribution: str, nu: float | None = None) -> FloatArray:
    """Half-widths ``z * s`` at every tracked level from a normal or a unit-variance Student-t."""
    from scipy import stats

    factors = []
    for level in TRACKED_LEVELS:
        upper = 0.5 + level / 2.0
        if distribution == "normal":
            factors.append(float(stats.norm.ppf(upper)))
        else:
            factors.append(standardized_t_quantile(upper, nu if nu is not None else 5.0))
    half: FloatArray = sigma[:, :, None] * np.asarray(factors)[None, None, :]
    return half


@dataclass(frozen=True, kw_only=True)
class IntervalRecipe:
    """What a served model needs to make its forecast and intervals from bars alone: the point
    model (``lstm``, or ``naive``/``drift`` with its ``slope``), the scale model (None for
    ``lstm_t``, which the network provides) and the online calibration state."""

    scale_kind: str
    scale: ScaleModel | None
    state: CalibrationState
    point: str = "lstm"
    slope: float = 0.0

    def __post_init__(self) -> None:
        if self.point not in POINT_MODELS:
            raise ValueError(f"unknown point model {self.point!r}")
        if (self.scale is None) != (self.scale_kind == NETWORK_SCALE):
            raise ValueError(f"scale {self.scale_kind!r} and its model do not match")

    @property
    def name(self) -> str:
        return candidate_name(self.point, self.scale_kind)

    def half_widths(self, sigma: FloatArray) -> dict[float, FloatArray]:
        """``{level: q * s}`` for one forecast whose scale per step is ``sigma`` (H,)."""
        return {level: q * sigma for level, q in self.state.half_widths().items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "point": self.point,
            "slope": self.slope,
            "scale_kind": self.scale_kind,
            "scale": None if self.scale is None else self.scale.to_dict(),
            "calibration": self.state.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntervalRecipe:
        raw_scale = data.get("scale")
        return cls(
            scale_kind=str(data["scale_kind"]),
            scale=None if raw_scale is None else scale_from_dict(raw_scale),
            state=CalibrationState.from_dict(data["calibration"]),
            point=str(data.get("point", "lstm")),
            slope=float(data.get("slope", 0.0)),
        )


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
