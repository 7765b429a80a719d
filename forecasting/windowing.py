"""From bars to supervised windows: features, targets, the chronological train/validation split
with a purge gap, and the scalers, which are fitted on the training part only.

Numpy only (no torch), so the inference path can share it. Index ``t`` is a row of the bars frame;
a window with *origin* ``t`` reads the features of rows ``t-L+1 .. t`` (information available at
the close of day ``t``) and its targets are the ``H`` steps ``t+1 .. t+H``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from forecasting.config import ModelConfig
from forecasting.errors import PortableError

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]

#: Fewest training windows worth fitting a network on.
MIN_TRAIN_WINDOWS: Final = 50
#: Fewest validation windows: early stopping needs a few, and the 95% split-conformal reference
#: interval is only finite from 19 residuals on.
MIN_VAL_WINDOWS: Final = 20
#: Fewest calibration windows, for the same reason: the 95% conformal quantile needs 19 scores.
MIN_CAL_WINDOWS: Final = 20
#: A floor for a scaler's standard deviation so a constant column does not divide by zero.
_MIN_SCALE: Final = 1e-12


class InsufficientDataError(PortableError, ValueError):
    """Too few bars to build the windows a model needs; says how many rows are needed."""

    def __init__(self, *, needed: int, got: int, purpose: str) -> None:
        super().__init__(f"{purpose} needs at least {needed} rows of daily bars, got {got}")
        self.needed = needed
        self.got = got
        self.purpose = purpose


@dataclass(frozen=True, kw_only=True)
class Standardizer:
    """Per-column mean and standard deviation, stored as plain floats so JSON round-trips exactly."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.scale) or not self.mean:
            raise ValueError("a standardizer needs one mean and one scale per column")
        if not all(math.isfinite(v) for v in (*self.mean, *self.scale)):
            raise ValueError("a standardizer's mean and scale must be finite")
        if any(s <= 0 for s in self.scale):
            raise ValueError("a standardizer's scales must be positive")

    @classmethod
    def fit(cls, values: FloatArray) -> Self:
        """Fit on a 2-D array (rows x columns); NaN rows must have been removed by the caller."""
        if values.ndim != 2 or values.shape[0] < 2:
            raise ValueError("fit a standardizer on a 2-D array with at least two rows")
        mean = values.mean(axis=0)
        scale = np.maximum(values.std(axis=0), _MIN_SCALE)
        return cls(mean=tuple(float(v) for v in mean), scale=tuple(float(v) for v in scale))

    def transform(self, values: FloatArray) -> FloatArray:
        scaled: FloatArray = (values - np.asarray(self.mean)) / np.asarray(self.scale)
        return scaled

    def inverse(self, values: FloatArray) -> FloatArray:
        restored: FloatArray = values * np.asarray(self.scale) + np.asarray(self.mean)
        return restored

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> Self:
        return cls(
            mean=tuple(float(v) for v in data["mean"]), scale=tuple(float(v) for v in data["scale"])
        )


@dataclass(frozen=True, kw_only=True)
class WindowScalers:
    """The statistics learned from the training part: one standardizer for the input features and
    one for the targets (per horizon step)."""

    features: Standardizer
    target: Standardizer

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features.to_dict(), "target": self.target.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            features=Standardizer.from_dict(data["features"]),
            target=Standardizer.from_dict(data["target"]),
        )


@dataclass(frozen=True, kw_only=True)
class OriginSplit:
    """Chronological training, validation and (optionally) calibration origins.

    ``purge`` origins (``H - 1``) are dropped between consecutive parts: the last training target
    ends at the close of the first validation origin, so no target of one part overlaps a target
    of the next. The calibration part is touched by no training decision (no weights, no early
    stopping, no epoch choice): it calibrates the intervals.
    """

    train: IndexArray
    validation: IndexArray
    calibration: IndexArray
    purge: int


def feature_matrix(bars: pd.DataFrame, features: Sequence[str]) -> FloatArray:
    """Raw (unscaled) features, one row per bar; row 0 is NaN because it has no previous close."""
    close = bars["close"].to_numpy(dtype=np.float64)
    columns: list[FloatArray] = []
    for name in features:
        column = np.full(close.shape, np.nan)
        if name == "log_return":
            column[1:] = np.diff(np.log(close))
        elif name == "range":
            high = bars["high"].to_numpy(dtype=np.float64)
            low = bars["low"].to_numpy(dtype=np.float64)
            column[1:] = ((high - low) / close)[1:]
        elif name == "volume":
            # log(1 + v) keeps zero-volume days (holidays in some feeds) finite.
            column[1:] = np.diff(np.log1p(bars["volume"].to_numpy(dtype=np.float64)))
        elif name == "close":
            column[1:] = close[1:]
        else:
            raise ValueError(f"unknown feature {name!r}")
        columns.append(column)
    return np.column_stack(columns)


def target_values(closes: FloatArray, origins: IndexArray, horizon: int, target: str) -> FloatArray:
    """The unscaled training targets of each origin: cumulative log returns or future closes."""
    steps = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    if target == "price":
        future: FloatArray = closes[steps]
        return future
    return log_returns_ahead(closes, origins, horizon)


def log_returns_ahead(closes: FloatArray, origins: IndexArray, horizon: int) -> FloatArray:
    """``log(c[t+h] / c[t])`` for h = 1..H, shape (origins, H); the currency of every evaluation."""
    steps = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    returns: FloatArray = np.log(closes[steps]) - np.log(closes[origins])[:, None]
    return returns


def required_rows(
    *, lookback: int, horizon: int, val_fraction: float, cal_fraction: float = 0.0
) -> int:
    """The fewest bars from which :func:`split_origins` yields enough windows."""
    # Every part's size grows by 0 or 1 per extra row, so the first size that works is the answer.
    rows = lookback + horizon + MIN_TRAIN_WINDOWS + MIN_VAL_WINDOWS
    while not _split_sizes_ok(rows, lookback, horizon, val_fraction, cal_fraction):
        rows += 1
    return rows


def _split_sizes(
    n_rows: int, lookback: int, horizon: int, val_fraction: float, cal_fraction: float
) -> tuple[int, int, int, int]:
    """(origins, validation, calibration, training) sizes."""
    origins = max(n_rows - lookback - horizon, 0)
    n_val = max(math.ceil(origins * val_fraction), MIN_VAL_WINDOWS)
    n_cal = max(math.ceil(origins * cal_fraction), MIN_CAL_WINDOWS) if cal_fraction > 0 else 0
    purges = (horizon - 1) * (2 if n_cal else 1)
    return origins, n_val, n_cal, origins - n_val - n_cal - purges


def _split_sizes_ok(
    n_rows: int, lookback: int, horizon: int, val_fraction: float, cal_fraction: float
) -> bool:
    _, n_val, _, n_train = _split_sizes(n_rows, lookback, horizon, val_fraction, cal_fraction)
    return n_train >= MIN_TRAIN_WINDOWS and n_val >= MIN_VAL_WINDOWS


def split_origins(
    n_rows: int,
    *,
    lookback: int,
    horizon: int,
    val_fraction: float,
    cal_fraction: float = 0.0,
    purpose: str = "training",
) -> OriginSplit:
    """Split the origins with complete targets (``lookback .. n_rows-1-horizon``) in time order:
    training, purge, validation and, with ``cal_fraction > 0``, purge and calibration."""
    if not _split_sizes_ok(n_rows, lookback, horizon, val_fraction, cal_fraction):
        needed = required_rows(
            lookback=lookback,
            horizon=horizon,
            val_fraction=val_fraction,
            cal_fraction=cal_fraction,
        )
        raise InsufficientDataError(needed=needed, got=n_rows, purpose=purpose)
    first = lookback
    origins, n_val, n_cal, n_train = _split_sizes(
        n_rows, lookback, horizon, val_fraction, cal_fraction
    )
    end = first + origins
    calibration = np.arange(end - n_cal, end, dtype=np.int64)
    val_end = end - n_cal - (horizon - 1 if n_cal else 0)
    train = np.arange(first, first + n_train, dtype=np.int64)
    validation = np.arange(val_end - n_val, val_end, dtype=np.int64)
    return OriginSplit(
        train=train, validation=validation, calibration=calibration, purge=horizon - 1
    )


def fit_scalers(
    features: FloatArray, closes: FloatArray, train_origins: IndexArray, config: ModelConfig
) -> WindowScalers:
    """Fit both scalers on what the training windows see, and nothing after it.

    Features: rows 1 .. last training origin. Targets: the training targets, which end at the close
    of the first validation origin at the latest (the purge gap guarantees it).
    """
    last = int(train_origins[-1])
    feature_scaler = Standardizer.fit(features[1 : last + 1])
    targets = target_values(closes, train_origins, config.horizon, config.target)
    if config.target == "price":
        # One scale for every step: the level is the same quantity at every horizon.
        flat = targets.reshape(-1, 1)
        single = Standardizer.fit(flat)
        target_scaler = Standardizer(
            mean=(single.mean[0],) * config.horizon, scale=(single.scale[0],) * config.horizon
        )
    else:
        target_scaler = Standardizer.fit(targets)
    return WindowScalers(features=feature_scaler, target=target_scaler)


def window_inputs(
    scaled_features: FloatArray, origins: IndexArray, lookback: int
) -> npt.NDArray[np.float32]:
    """Stack the ``lookback`` feature rows ending at each origin: shape (origins, lookback, F)."""
    if origins.size and int(origins.min()) < lookback:
        raise ValueError(f"an origin needs {lookback} earlier feature rows")
    offsets = np.arange(-lookback + 1, 1)
    rows = origins[:, None] + offsets[None, :]
    return np.ascontiguousarray(scaled_features[rows], dtype=np.float32)


def model_inputs(
    bars: pd.DataFrame, origins: IndexArray, config: ModelConfig, scalers: WindowScalers
) -> npt.NDArray[np.float32]:
    """Scaled network inputs for the given origins of ``bars``."""
    scaled = scalers.features.transform(feature_matrix(bars, config.features))
    return window_inputs(scaled, origins, config.lookback)


def outputs_to_log_returns(
    outputs: FloatArray, last_closes: FloatArray, config: ModelConfig, scalers: WindowScalers
) -> FloatArray:
    """Network outputs (scaled) back to cumulative log returns from each origin's close."""
    values = scalers.target.inverse(outputs)
    if config.target == "price":
        # A level forecast can be non-positive; floor it so the log return stays finite.
        floor = last_closes[:, None] * 1e-6
        return np.log(np.maximum(values, floor)) - np.log(last_closes)[:, None]
    return values


@dataclass(frozen=True, kw_only=True)
class TrainingWindows:
    """Everything a fit needs, already scaled; ``*_log_returns`` are the unscaled actual outcomes."""

    train_inputs: npt.NDArray[np.float32]
    train_targets: npt.NDArray[np.float32]
    val_inputs: npt.NDArray[np.float32]
    val_targets: npt.NDArray[np.float32]
    val_log_returns: FloatArray
    split: OriginSplit
    scalers: WindowScalers


def prepare_training_windows(
    bars: pd.DataFrame, config: ModelConfig, *, val_fraction: float, cal_fraction: float = 0.0
) -> TrainingWindows:
    """Features, split, scalers (training part only) and scaled windows for one fit."""
    split = split_origins(
        len(bars),
        lookback=config.lookback,
        horizon=config.horizon,
        val_fraction=val_fraction,
        cal_fraction=cal_fraction,
    )
    raw = feature_matrix(bars, config.features)
    closes = bars["close"].to_numpy(dtype=np.float64)
    scalers = fit_scalers(raw, closes, split.train, config)
    scaled = scalers.features.transform(raw)

    def targets(origins: IndexArray) -> npt.NDArray[np.float32]:
        values = target_values(closes, origins, config.horizon, config.target)
        return scalers.target.transform(values).astype(np.float32)

    return TrainingWindows(
        train_inputs=window_inputs(scaled, split.train, config.lookback),
        train_targets=targets(split.train),
        val_inputs=window_inputs(scaled, split.validation, config.lookback),
        val_targets=targets(split.validation),
        val_log_returns=log_returns_ahead(closes, split.validation, config.horizon),
        split=split,
        scalers=scalers,
    )
