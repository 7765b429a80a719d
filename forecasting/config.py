"""The three configurations of a forecasting model: the network and its windows, its training, and
its walk-forward backtest. Plain values (picklable, JSON round-trip) so they can cross process
boundaries, be logged to MLflow and be stored in an artifact's metadata.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Final, Self

from forecasting.errors import PortableError
from forecasting.limits import (
    BATCH_SIZE,
    EPOCHS,
    FOLDS,
    HORIZON,
    LOOKBACK,
    TEST_SIZE,
    WINDOWS_PER_EPOCH,
    IntRange,
)

#: Input features the windowing knows how to compute (see :mod:`forecasting.windowing`).
KNOWN_FEATURES: Final = ("log_return", "range", "volume", "close")
#: What the network predicts: cumulative log returns (default) or the price level.
TARGETS: Final = ("log_return", "price")
ACCELERATORS: Final = ("auto", "cpu", "gpu", "cuda", "mps")
#: The network's output: a Student-t location and scale per step, or a point per step.
HEADS: Final = ("student_t", "point")


class InvalidConfigError(PortableError, ValueError):
    """A configuration field outside its allowed range; the message names the field."""

    def __init__(self, config: str, field_name: str, problem: str) -> None:
        super().__init__(f"{config}.{field_name}: {problem}")
        self.config = config
        self.field_name = field_name
        self.problem = problem


def _check_int(config: str, name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidConfigError(config, name, f"expected an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidConfigError(config, name, f"expected {low} to {high}, got {value}")


def _check_in(config: str, name: str, value: object, limits: IntRange) -> None:
    _check_int(config, name, value, limits.low, limits.high)


def _check_float(
    config: str, name: str, value: object, low: float, high: float, *, open_low: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidConfigError(config, name, f"expected a finite number, got {value!r}")
    too_low = value <= low if open_low else value < low
    if too_low or value > high:
        bracket = "(" if open_low else "["
        raise InvalidConfigError(config, name, f"expected a value in {bracket}{low}, {high}]")


def _from_mapping(cls: type[Any], config: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the known keys and reject unknown ones, so a typo in stored metadata is not ignored."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InvalidConfigError(config, unknown[0], "unknown field")
    return dict(data)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """The network and the windows it reads.

    ``lookback`` trading days of ``features`` in, ``horizon`` steps out, each step predicted
    directly. The default target is the cumulative log return ``log(c[t+h] / c[t])``: the price
    level target is there to show how much worse it is, and needs the ``close`` level as input.
    ``head`` ``student_t`` (default) trains a location and a scale per step with the Student-t
    likelihood, so the network is also a volatility model; ``point`` is the squared-error head.
    A stored configuration without ``head`` predates it, so it reads as ``point``.
    """

    lookback: int = LOOKBACK.default
    horizon: int = HORIZON.default
    features: tuple[str, ...] = ("log_return", "range", "volume")
    target: str = "log_return"
    hidden_size: int = 64
    num_layers: int = 2
    dropout: float = 0.1
    head: str = "student_t"

    def __post_init__(self) -> None:
        name = "ModelConfig"
        if self.head not in HEADS:
            raise InvalidConfigError(name, "head", f"expected one of {', '.join(HEADS)}")
        _check_in(name, "lookback", self.lookback, LOOKBACK)
        _check_in(name, "horizon", self.horizon, HORIZON)
        _check_int(name, "hidden_size", self.hidden_size, 1, 1024)
        _check_int(name, "num_layers", self.num_layers, 1, 8)
        _check_float(name, "dropout", self.dropout, 0.0, 0.9)
        if isinstance(self.features, str) or not isinstance(self.features, tuple | list):
            raise InvalidConfigError(name, "features", "expected a sequence of feature names")
        features = tuple(self.features)
        object.__setattr__(self, "features", features)
        unknown = [f for f in features if f not in KNOWN_FEATURES]
        if unknown:
            raise InvalidConfigError(
                name, "features", f"unknown {unknown[0]!r}; known: {', '.join(KNOWN_FEATURES)}"
            )
        if len(set(features)) != len(features):
            raise InvalidConfigError(name, "features", "each feature may appear once")
        if "log_return" not in features:
            raise InvalidConfigError(name, "features", "must include 'log_return'")
        if self.target not in TARGETS:
            raise InvalidConfigError(name, "target", f"expected one of {', '.join(TARGETS)}")
        if self.target == "price" and "close" not in features:
            raise InvalidConfigError(
                name, "features", "target 'price' needs the 'close' level among the features"
            )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = list(self.features)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        values = _from_mapping(cls, "ModelConfig", data)
        values.setdefault("head", "point")
        if "features" in values and isinstance(values["features"], list):
            values["features"] = tuple(values["features"])
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How one model is fitted.

    ``max_history`` keeps only the most recent rows (2520 ≈ 10 years): older regimes mostly add
    training time. The windows split in time order into training, ``val_fraction`` for early
    stopping and the choice of the best epoch, and the last ``calibration_fraction`` for the
    intervals' calibration, which no training decision touches. ``ensemble`` networks are trained
    with seeds ``seed, seed + 1, ...`` and averaged: measured over 3 seeds on 8 symbols
    (``bench/accuracy.py``), one seed's DM p-value against naive ranged over as much as 0.39-0.86,
    so a single network's evidence would be partly a draw of its seed; three cost 3x the training
    time. ``num_threads`` sets torch's intra-op threads while
    fitting; None picks :func:`forecasting.model.default_train_threads` (half the CPUs).
    ``windows_per_epoch``: when the training windows outnumber it, each epoch draws a fresh
    random sample of this many (and validation scores a fixed sample of at most half as many),
    so an epoch of a model trained on a large watchlist costs the same as on a small one; None
    passes over every window each epoch (a per-symbol fit never has that many).
    """

    epochs: int = EPOCHS.default
    batch_size: int = BATCH_SIZE.default
    learning_rate: float = 1e-3
    patience: int = 5
    seed: int = 42
    val_fraction: float = 0.15
    calibration_fraction: float = 0.15
    ensemble: int = 3
    max_history: int | None = 2520
    accelerator: str = "auto"
    progress_bar: bool = False
    num_threads: int | None = None
    windows_per_epoch: int | None = None

    def __post_init__(self) -> None:
        name = "TrainConfig"
        _check_in(name, "epochs", self.epochs, EPOCHS)
        _check_in(name, "batch_size", self.batch_size, BATCH_SIZE)
        _check_float(name, "learning_rate", self.learning_rate, 0.0, 1.0, open_low=True)
        _check_int(name, "patience", self.patience, 1, 500)
        _check_int(name, "seed", self.seed, 0, 2**32 - 1)
        _check_float(name, "val_fraction", self.val_fraction, 0.05, 0.5)
        _check_float(name, "calibration_fraction", self.calibration_fraction, 0.05, 0.5)
        if self.val_fraction + self.calibration_fraction > 0.6:
            raise InvalidConfigError(
                name, "calibration_fraction", "with val_fraction, leaves too little to train on"
            )
        _check_int(name, "ensemble", self.ensemble, 1, 10)
        if self.max_history is not None:
            _check_int(name, "max_history", self.max_history, 100, 1_000_000)
        if self.accelerator not in ACCELERATORS:
            raise InvalidConfigError(
                name, "accelerator", f"expected one of {', '.join(ACCELERATORS)}"
            )
        if not isinstance(self.progress_bar, bool):
            raise InvalidConfigError(name, "progress_bar", "expected true or false")
        if self.num_threads is not None:
            _check_int(name, "num_threads", self.num_threads, 1, 256)
        if self.windows_per_epoch is not None:
            _check_in(name, "windows_per_epoch", self.windows_per_epoch, WINDOWS_PER_EPOCH)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_from_mapping(cls, "TrainConfig", data))


@dataclass(frozen=True, kw_only=True)
class BacktestConfig:
    """A walk-forward backtest: ``folds`` consecutive blocks of ``test_size`` forecast origins at
    the end of the history. ``refit`` trains a fresh model before each block on everything before
    it; otherwise one model trained before the first block is evaluated on all of them.
    """

    folds: int = FOLDS.default
    test_size: int = TEST_SIZE.default
    refit: bool = True

    def __post_init__(self) -> None:
        name = "BacktestConfig"
        _check_in(name, "folds", self.folds, FOLDS)
        _check_in(name, "test_size", self.test_size, TEST_SIZE)
        if not isinstance(self.refit, bool):
            raise InvalidConfigError(name, "refit", "expected true or false")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**_from_mapping(cls, "BacktestConfig", data))
