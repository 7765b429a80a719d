"""One LSTM for the whole watchlist: a single network trained on the windows of every symbol.

Why: a per-symbol network sees a few thousand windows of one noisy series; pooling 1,000 symbols
gives the network far more examples of the same scale-free dynamics (log returns, ranges, volume
changes) for the cost of one fit, and the weekly retraining budget grows with the data, not with
the number of networks.

The inputs are already scale-free (:func:`forecasting.windowing.feature_matrix`); on top of that
each symbol keeps its **own** standardisation of features and targets, fitted on that symbol's
training part only (:func:`forecasting.windowing.prepare_training_windows`), so one symbol's
later data never moves its own scalers nor anyone else's. A ``cutoff`` date cuts every symbol's
bars before the windows are built: a backtest fold's global network is trained on data up to the
fold's first test origin for **every** symbol, with no look-ahead across symbols either.

Seen from one symbol the global model is an ordinary LSTM: the shared network with the symbol's
scalers and conformal half-widths (:meth:`GlobalForecaster.predictor`), and its
:meth:`GlobalForecaster.symbol_artifact` is an ``lstm`` artifact the serving path loads as it is.
The whole model is one safetensors file and one JSON document (:meth:`to_artifact`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from forecasting.artifacts import FORMAT_VERSION, InvalidArtifactError, ModelArtifact
from forecasting.config import ModelConfig, TrainConfig
from forecasting.forecast import IndexArray, NotFittedError
from forecasting.model import WarmStart
from forecasting.network import LSTMNetwork, NetworkSpec
from forecasting.predictor import LSTMPredictor, quantiles_from_json, quantiles_to_json
from forecasting.windowing import (
    InsufficientDataError,
    TrainingWindows,
    WindowScalers,
    prepare_training_windows,
)

logger = logging.getLogger(__name__)

#: The model kind of a whole global artifact (a symbol's view of it is an ``lstm`` artifact).
GLOBAL_KIND: Final = "glstm"


@dataclass(frozen=True, kw_only=True)
class SymbolWindows:
    """One symbol's share of a global fit: the bars it used (``history``, whose row 0 is row
    ``offset`` of the symbol's cleaned bars) and its windows, scaled with its own scalers."""

    symbol: str
    history: pd.DataFrame
    offset: int
    windows: TrainingWindows


@dataclass(frozen=True, kw_only=True)
class StackedWindows:
    """Every symbol's training and validation windows, stacked for one fit."""

    train_inputs: npt.NDArray[np.float32]
    train_targets: npt.NDArray[np.float32]
    val_inputs: npt.NDArray[np.float32]
    val_targets: npt.NDArray[np.float32]


def symbol_windows(
    symbol: str,
    bars: pd.DataFrame,
    configs: tuple[ModelConfig, TrainConfig],
    cutoff: date | None = None,
) -> SymbolWindows:
    """The windows of ``symbol``'s bars up to ``cutoff`` (inclusive), scalers fitted on its
    training part; raises :class:`InsufficientDataError` when there are too few."""
    from forecasting.validation import clean_bars

    config, train = configs
    cleaned = clean_bars(bars)
    if cutoff is not None:
        cleaned = cleaned[pd.to_datetime(cleaned["date"]).dt.date <= cutoff]
        cleaned = cleaned.reset_index(drop=True)
    history = cleaned
    if train.max_history is not None:
        history = cleaned.tail(train.max_history).reset_index(drop=True)
    windows = prepare_training_windows(
        history, config, val_fraction=train.val_fraction, cal_fraction=train.calibration_fraction
    )
    return SymbolWindows(
        symbol=symbol, history=history, offset=len(cleaned) - len(history), windows=windows
    )


def stack(parts: Sequence[SymbolWindows]) -> StackedWindows:
    return StackedWindows(
        train_inputs=np.concatenate([p.windows.train_inputs for p in parts]),
        train_targets=np.concatenate([p.windows.train_targets for p in parts]),
        val_inputs=np.concatenate([p.windows.val_inputs for p in parts]),
        val_targets=np.concatenate([p.windows.val_targets for p in parts]),
    )


class GlobalForecaster:
    """The global LSTM: ``fit`` on a mapping of symbol -> bars, then one predictor per symbol.

    Symbols with too few bars (before ``cutoff``) are left out and listed in ``skipped``.
    ``warm_start`` fine-tunes from earlier weights (see :mod:`forecasting.warm_start`).
    """

    model_kind: Final = GLOBAL_KIND

    def __init__(
        self,
        model_config: ModelConfig | None = None,
        train_config: TrainConfig | None = None,
        *,
        warm_start: WarmStart | None = None,
    ) -> None:
        self.model_config = model_config or ModelConfig()
        self.train_config = train_config or TrainConfig()
        self.warm_start = warm_start
        self.cutoff: date | None = None
        self.skipped: dict[str, str] = {}
        self.training: dict[str, Any] = {}
        self._networks: tuple[LSTMNetwork, ...] = ()
        self._parts: dict[str, SymbolWindows] = {}
        self._predictors: dict[str, LSTMPredictor] = {}
        self._data: dict[str, dict[str, Any]] = {}

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._predictors)

    @property
    def networks(self) -> tuple[LSTMNetwork, ...]:
        if not self._networks:
            raise NotFittedError("GlobalForecaster")
        return self._networks

    def fit(
        self, bars_by_symbol: Mapping[str, pd.DataFrame], *, cutoff: date | None = None
    ) -> Self:
        """Train one network (per ensemble member) on every symbol's windows up to ``cutoff``."""
        self.cutoff = cutoff
        configs = (self.model_config, self.train_config)
        for symbol, bars in bars_by_symbol.items():
            try:
                self._parts[symbol] = symbol_windows(symbol, bars, configs, cutoff)
            except InsufficientDataError as exc:
                self.skipped[symbol] = str(exc)
        if not self._parts:
            raise InsufficientDataError(
                needed=1, got=0, purpose="a global model (symbols with enough bars)"
            )
        self._networks = self._train(stack(list(self._parts.values())))
        self._predictors = {
            symbol: _symbol_predictor(self._networks, self.model_config, part)
            for symbol, part in self._parts.items()
        }
        self._data = {symbol: _data_block(part) for symbol, part in self._parts.items()}
        return self

    def _train(self, stacked: StackedWindows) -> tuple[LSTMNetwork, ...]:
        from forecasting.model import _train_network

        spec = NetworkSpec.for_model(self.model_config)
        train, warm = self.train_config, self.warm_start
        started = time.process_time(), time.perf_counter()
        runs = [
            _train_network(
                stacked,
                spec,
                train,
                (),
                seed=train.seed + member,
                init_state=warm.state_for(member) if warm else None,
                max_epochs=warm.epochs if warm else None,
            )
            for member in range(train.ensemble)
        ]
        self.training = {
            "symbols": len(self._parts),
            "train_windows": int(stacked.train_inputs.shape[0]),
            "val_windows": int(stacked.val_inputs.shape[0]),
            "epochs_run": len(runs[0].history),
            "best_epoch": runs[0].best_epoch,
            "best_val_loss": runs[0].best_val_loss,
            "first_train_loss": runs[0].history[0].train_loss if runs[0].history else None,
            "stopped_early": runs[0].stopped_early,
            "optimizer_steps": runs[0].steps,
            "windows_per_epoch": train.windows_per_epoch,
            "seconds": round(time.perf_counter() - started[1], 3),
            "cpu_seconds": round(time.process_time() - started[0], 3),
            "device": runs[0].device,
            "warm_start_epochs": warm.epochs if warm else None,
            "members": len(runs),
        }
        logger.info(
            "fitted the global LSTM on %d symbols (%d windows) in %.1fs, %d epochs",
            len(self._parts),
            self.training["train_windows"],
            self.training["seconds"],
            self.training["epochs_run"],
        )
        return tuple(run.network for run in runs)

    def predictor(self, symbol: str) -> LSTMPredictor:
        """The shared network with ``symbol``'s own scalers and conformal half-widths."""
        if symbol not in self._predictors:
            raise NotFittedError("GlobalForecaster", f"forecast {symbol} (not in its fit)")
        return self._predictors[symbol]

    def scalers(self, symbol: str) -> WindowScalers:
        return self.predictor(symbol).scalers

    def _rows(self, symbol: str, origins: IndexArray) -> IndexArray:
        part = self._parts.get(symbol)
        if part is None:
            raise NotFittedError("GlobalForecaster", f"say which windows of {symbol} it used")
        rows: IndexArray = origins + part.offset
        return rows

    def calibration_rows(self, symbol: str) -> IndexArray:
        """``symbol``'s calibration origins, as rows of its cleaned bars."""
        return self._rows(symbol, self._parts[symbol].windows.split.calibration)

    def validation_rows(self, symbol: str) -> IndexArray:
        return self._rows(symbol, self._parts[symbol].windows.split.validation)

    def training_rows(self, symbol: str) -> IndexArray:
        return self._rows(symbol, self._parts[symbol].windows.split.train)

    def state_dict(self) -> dict[str, Any]:
        """The shared weights, named as an ``lstm`` artifact names them."""
        first = next(iter(self._predictors.values()), None)
        if first is None:
            raise NotFittedError("GlobalForecaster", "be saved")
        return {k: v.detach().cpu().contiguous() for k, v in first.state_dict().items()}

    def _common_metadata(self) -> dict[str, Any]:
        from forecasting.artifacts import library_versions

        spec = NetworkSpec.for_model(self.model_config)
        return {
            "format_version": FORMAT_VERSION,
            "model_config": self.model_config.to_dict(),
            "train_config": self.train_config.to_dict(),
            "network": {**spec.to_dict(), "members": len(self.networks)},
            "versions": library_versions(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def to_artifact(self) -> ModelArtifact:
        """The whole model: safetensors weights, and per symbol its scalers, half-widths and
        data span in the JSON metadata."""
        from safetensors.torch import save

        metadata = {
            **self._common_metadata(),
            "model_kind": GLOBAL_KIND,
            "scalers": {s: p.scalers.to_dict() for s, p in self._predictors.items()},
            "conformal": {s: quantiles_to_json(p.quantiles) for s, p in self._predictors.items()},
            "data": self._data,
            "cutoff": None if self.cutoff is None else self.cutoff.isoformat(),
            "skipped": dict(self.skipped),
            "training": dict(self.training),
        }
        return ModelArtifact(weights=save(self.state_dict()), metadata=metadata)

    def symbol_artifact(
        self,
        symbol: str,
        *,
        metrics: Mapping[str, float] | None = None,
        serving: Mapping[str, Any] | None = None,
        predictor: LSTMPredictor | None = None,
    ) -> ModelArtifact:
        """``symbol``'s view: an ordinary ``lstm`` artifact (shared weights, its own scalers),
        marked ``global`` so a reader knows one network serves the whole watchlist."""
        from safetensors.torch import save

        chosen = predictor or self.predictor(symbol)
        data = self._data.get(symbol, {})
        metadata: dict[str, Any] = {
            **self._common_metadata(),
            "model_kind": "lstm",
            "symbol": symbol,
            "scalers": chosen.scalers.to_dict(),
            "conformal": quantiles_to_json(chosen.quantiles),
            "data": data,
            "training": {**self.training, "device": self.training.get("device", "cpu")},
            "global": {"symbols": len(self._predictors), "cutoff": _iso(self.cutoff)},
            "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        }
        if chosen.intervals is not None:
            metadata["intervals"] = chosen.intervals.to_dict()
        if serving is not None:
            metadata["serving"] = dict(serving)
        return ModelArtifact(weights=save(self.state_dict()), metadata=metadata)

    @classmethod
    def from_artifact(cls, artifact: ModelArtifact) -> Self:
        """The model back from :meth:`to_artifact` (predictions only, no windows)."""
        from forecasting.predictor import _load_networks

        metadata = artifact.metadata
        if metadata.get("model_kind") != GLOBAL_KIND:
            raise InvalidArtifactError(f"model_kind {metadata.get('model_kind')!r} is not 'glstm'")
        try:
            model = cls(
                ModelConfig.from_dict(metadata["model_config"]),
                TrainConfig.from_dict(metadata["train_config"]),
            )
            spec = NetworkSpec.from_dict(metadata["network"])
            members = int(metadata["network"].get("members", 1))
            scalers = {s: WindowScalers.from_dict(v) for s, v in metadata["scalers"].items()}
            quantiles = {s: quantiles_from_json(v) for s, v in metadata["conformal"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArtifactError(f"unreadable metadata ({exc})") from None
        model._networks = tuple(_load_networks(artifact.weights, spec, members))
        model._predictors = {
            s: LSTMPredictor(
                networks=model._networks,
                model_config=model.model_config,
                scalers=scalers[s],
                quantiles=quantiles[s],
            )
            for s in scalers
        }
        model._data = dict(metadata.get("data", {}))
        model.training = dict(metadata.get("training", {}))
        raw_cutoff = metadata.get("cutoff")
        model.cutoff = None if raw_cutoff is None else date.fromisoformat(raw_cutoff)
        return model


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _symbol_predictor(
    networks: Sequence[LSTMNetwork], config: ModelConfig, part: SymbolWindows
) -> LSTMPredictor:
    from forecasting.model import _calibrated_predictor

    return _calibrated_predictor(networks, config, part.history, part.windows)


def _data_block(part: SymbolWindows) -> dict[str, Any]:
    dates = part.history["date"]
    split = part.windows.split
    return {
        "start": pd.Timestamp(dates.iloc[0]).date().isoformat(),
        "end": pd.Timestamp(dates.iloc[-1]).date().isoformat(),
        "rows": len(part.history),
        "train_windows": int(split.train.size),
        "val_windows": int(split.validation.size),
        "cal_windows": int(split.calibration.size),
    }


def global_warm_start(
    artifact: ModelArtifact | None, config: ModelConfig, epochs: int | None
) -> WarmStart | None:
    """The champion global model's networks as a warm start, when its shape matches."""
    from forecasting.warm_start import network_states

    if artifact is None or not epochs or artifact.metadata.get("model_kind") != GLOBAL_KIND:
        return None
    champion = GlobalForecaster.from_artifact(artifact)
    if champion.networks[0].spec != NetworkSpec.for_model(config):
        return None
    return WarmStart(states=network_states(champion.networks), epochs=epochs)


class GlobalFolds:
    """The backtest's global networks, one per fold cutoff, shared by every symbol's backtest.

    The network for a cutoff is trained on every symbol's bars up to that date (see
    :meth:`GlobalForecaster.fit`), so a fold's forecasts are out of sample for every symbol; the
    symbols of one exchange share their fold cutoffs and so their networks. With
    ``warm_epochs``, a cutoff's network is fine-tuned from the one of the latest earlier cutoff
    (which saw only data before it), the first from scratch."""

    def __init__(
        self,
        bars_by_symbol: Mapping[str, pd.DataFrame],
        model_config: ModelConfig,
        train_config: TrainConfig,
        *,
        warm_epochs: int | None = None,
    ) -> None:
        self.bars_by_symbol = dict(bars_by_symbol)
        self.model_config = model_config
        self.train_config = train_config
        self.warm_epochs = warm_epochs
        self._models: dict[date, GlobalForecaster] = {}

    def at(self, cutoff: date) -> GlobalForecaster:
        """The global model trained on everything up to ``cutoff`` (trained once, then cached)."""
        from forecasting.warm_start import network_states

        if cutoff not in self._models:
            earlier = [day for day in self._models if day < cutoff]
            warm = None
            if self.warm_epochs and earlier:
                previous = self._models[max(earlier)]
                warm = WarmStart(states=network_states(previous.networks), epochs=self.warm_epochs)
            model = GlobalForecaster(self.model_config, self.train_config, warm_start=warm)
            self._models[cutoff] = model.fit(self.bars_by_symbol, cutoff=cutoff)
        return self._models[cutoff]

    @property
    def models(self) -> dict[date, GlobalForecaster]:
        return dict(self._models)

    def cpu_seconds(self) -> float:
        return float(sum(m.training.get("cpu_seconds", 0.0) for m in self._models.values()))


class GlobalSymbolView:
    """One symbol's view of a fitted global model with what the serving code reads from a final
    fit (:func:`forecasting.serving.serving_metadata`), so a gate that chose ``glstm`` serves it
    with the same recipe machinery as the per-symbol LSTM."""

    def __init__(self, model: GlobalForecaster, symbol: str) -> None:
        from forecasting.model import FitSummary

        self.model = model
        self.symbol = symbol
        self._predictor = model.predictor(symbol)
        self.history: tuple[Any, ...] = ()
        self.hardware: dict[str, float | None] = {}
        data = model._data[symbol]
        training = model.training
        self.summary = FitSummary(
            epochs_run=int(training.get("epochs_run", 0)),
            best_epoch=training.get("best_epoch"),
            best_val_loss=training.get("best_val_loss"),
            stopped_early=bool(training.get("stopped_early", False)),
            training_seconds=float(training.get("seconds", 0.0)),
            device=str(training.get("device", "cpu")),
            rows=int(data["rows"]),
            train_windows=int(data["train_windows"]),
            val_windows=int(data["val_windows"]),
            cal_windows=int(data["cal_windows"]),
            members=len(model.networks),
            data_start=str(data["start"]),
            data_end=str(data["end"]),
        )

    @property
    def horizon(self) -> int:
        return self.model.model_config.horizon

    @property
    def predictor(self) -> LSTMPredictor:
        return self._predictor

    def calibration_rows(self) -> IndexArray:
        return self.model.calibration_rows(self.symbol)

    def predict_log_returns(self, bars: pd.DataFrame, origins: Sequence[int] | IndexArray) -> Any:
        return self._predictor.predict_log_returns(bars, origins)

    def predict_distribution(self, bars: pd.DataFrame, origins: Sequence[int] | IndexArray) -> Any:
        return self._predictor.predict_distribution(bars, origins)

    def set_intervals(self, recipe: Any) -> None:
        self._predictor = self._predictor.with_intervals(recipe)

    def to_artifact(
        self,
        *,
        symbol: str | None = None,
        metrics: Mapping[str, float] | None = None,
        serving: Mapping[str, Any] | None = None,
    ) -> ModelArtifact:
        return self.model.symbol_artifact(
            symbol or self.symbol, metrics=metrics, serving=serving, predictor=self._predictor
        )


def as_served_by_global(report: Any) -> Any:
    """``report`` (a :class:`~forecasting.backtest.BacktestReport` whose gate chose ``glstm``)
    as a symbol's view of the global model reads it: in that artifact the global network is
    *the* network, so its recipe's point is ``lstm`` and its out-of-sample scores are glstm's."""
    from dataclasses import replace

    from forecasting.candidates import GLOBAL_POINT, candidate_name, split_name

    decision = report.decision
    if decision.point != GLOBAL_POINT:
        return report
    scores = {n: v for n, v in report.series.scores.items() if split_name(n)[0] != "lstm"}
    for name, value in report.series.scores.items():
        point, scale = split_name(name)
        if point == GLOBAL_POINT:
            scores[candidate_name("lstm", scale)] = value
    served = replace(decision, point="lstm", selected=candidate_name("lstm", decision.scale))
    return replace(report, decision=served, series=replace(report.series, scores=scores))
