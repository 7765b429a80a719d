"""The LSTM forecaster: owns the data preparation, the Lightning Trainer, early stopping, seeding,
the conformal calibration and the artifact. The network itself lives in
:mod:`forecasting.network`, its training step in :mod:`forecasting.lightning_module`.

``fit(bars)`` -> ``predict(bars)`` / ``predict_log_returns(bars, origins)`` -> ``to_artifact()``;
``from_artifact`` gives back a model whose predictions are bit-identical.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final, Self

import numpy as np
import pandas as pd

from forecasting.artifacts import FORMAT_VERSION, ModelArtifact, library_versions
from forecasting.callbacks import (
    BestWeightsCallback,
    EpochLossCallback,
    EpochLosses,
    EpochSink,
    HardwareCallback,
)
from forecasting.config import ModelConfig, TrainConfig
from forecasting.forecast import (
    DEFAULT_EXCHANGE,
    INTERVAL_LEVELS,
    FloatArray,
    Forecast,
    IndexArray,
    NotFittedError,
)
from forecasting.network import LSTMNetwork, NetworkSpec
from forecasting.predictor import LSTMPredictor, quantiles_to_json
from forecasting.windowing import TrainingWindows, prepare_training_windows

logger = logging.getLogger(__name__)

#: Loggers whose start-up chatter (GPU/TPU availability, "Seed set", tips) is not ours to print.
_CHATTY_LOGGERS: Final = ("lightning.pytorch", "lightning.fabric", "lightning_utilities")


@dataclass(frozen=True, kw_only=True)
class FitSummary:
    """What a fit did: how long, how far, on what data and which device."""

    epochs_run: int
    best_epoch: int | None
    best_val_loss: float | None
    stopped_early: bool
    training_seconds: float
    device: str
    rows: int
    train_windows: int
    val_windows: int
    data_start: str
    data_end: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence Lightning's informational logs and the warnings that do not apply to this model
    (in-memory tensors need no dataloader workers), for the duration of one fit only."""
    previous = {name: logging.getLogger(name).level for name in _CHATTY_LOGGERS}
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
            warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval.*")
            yield
    finally:
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)


def default_train_threads() -> int:
    """Half the CPUs, 1 to 8: torch's default of one thread per core oversubscribes a machine that
    also runs the API and the scheduler, and OpenMP's spinning threads then stall (measured on
    2 vCPUs under load: 2 threads trained this LSTM 5-9x slower than 1; idle, 2 were no faster).
    The small matrices of this LSTM gain little beyond a few threads anyway."""
    return max(1, min(8, (os.cpu_count() or 1) // 2))


@contextlib.contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count or default_train_threads())
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class LSTMForecaster:
    """An LSTM per symbol, trained on the most recent ``max_history`` bars.

    ``epoch_sinks`` receive each epoch's losses while training (the MLflow run, a job's progress).
    """

    model_kind: Final = "lstm"

    def __init__(
        self,
        model_config: ModelConfig | None = None,
        train_config: TrainConfig | None = None,
        *,
        epoch_sinks: Sequence[EpochSink] = (),
    ) -> None:
        self.model_config = model_config or ModelConfig()
        self.train_config = train_config or TrainConfig()
        self._epoch_sinks = tuple(epoch_sinks)
        self._predictor: LSTMPredictor | None = None
        self._metadata: dict[str, Any] = {}
        self.history: tuple[EpochLosses, ...] = ()
        self.summary: FitSummary | None = None
        self.hardware: dict[str, float | None] = {}

    @property
    def fitted(self) -> bool:
        return self._predictor is not None

    @property
    def horizon(self) -> int:
        return self.model_config.horizon

    @property
    def predictor(self) -> LSTMPredictor:
        if self._predictor is None:
            raise NotFittedError("LSTMForecaster")
        return self._predictor

    @property
    def quantiles(self) -> Mapping[float, FloatArray]:
        return self.predictor.quantiles

    def fit(self, bars: pd.DataFrame) -> Self:
        """Train on validated ``bars`` (bad rows raise ``InvalidBarsError``); returns ``self``.

        The last ``val_fraction`` of the windows (after a purge gap) drives early stopping, picks
        the best epoch's weights, and calibrates the 80%/95% conformal intervals.
        """
        from forecasting.validation import clean_bars

        config, train = self.model_config, self.train_config
        history = clean_bars(bars)
        if train.max_history is not None:
            history = history.tail(train.max_history).reset_index(drop=True)
        windows = prepare_training_windows(history, config, val_fraction=train.val_fraction)
        spec = NetworkSpec(
            input_size=len(config.features),
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout,
            horizon=config.horizon,
        )
        run = _train_network(windows, spec, train, self._epoch_sinks)
        self._predictor = _calibrated_predictor(run.network, config, history, windows)
        self.history = run.history
        self.hardware = run.hardware
        dates = history["date"]
        self.summary = FitSummary(
            epochs_run=len(run.history),
            best_epoch=run.best_epoch,
            best_val_loss=run.best_val_loss,
            stopped_early=run.stopped_early,
            training_seconds=run.seconds,
            device=run.device,
            rows=len(history),
            train_windows=int(windows.split.train.size),
            val_windows=int(windows.split.validation.size),
            data_start=pd.Timestamp(dates.iloc[0]).date().isoformat(),
            data_end=pd.Timestamp(dates.iloc[-1]).date().isoformat(),
        )
        self._metadata = _metadata(self.summary, config, train, spec, windows.scalers.to_dict())
        self._metadata["conformal"] = quantiles_to_json(self._predictor.quantiles)
        logger.info(
            "fitted LSTM on %d rows (%s..%s) in %.1fs, %d epochs, best val loss %.4g on %s",
            self.summary.rows,
            self.summary.data_start,
            self.summary.data_end,
            run.seconds,
            self.summary.epochs_run,
            run.best_val_loss,
            run.device,
        )
        return self

    def predict_log_returns(
        self, bars: pd.DataFrame, origins: Sequence[int] | IndexArray
    ) -> FloatArray:
        return self.predictor.predict_log_returns(bars, origins)

    def predict(self, bars: pd.DataFrame, *, exchange: str = DEFAULT_EXCHANGE) -> Forecast:
        return self.predictor.predict(bars, exchange=exchange)

    def to_artifact(
        self, *, symbol: str | None = None, metrics: Mapping[str, float] | None = None
    ) -> ModelArtifact:
        """The weights (safetensors) and the metadata needed to rebuild this model exactly."""
        from safetensors.torch import save

        if self._predictor is None:
            raise NotFittedError("LSTMForecaster", "be saved")
        state = {
            name: tensor.detach().cpu().contiguous()
            for name, tensor in self._predictor.network.state_dict().items()
        }
        metadata = dict(self._metadata)
        if symbol is not None:
            metadata["symbol"] = symbol
        if metrics is not None:
            metadata["metrics"] = {key: float(value) for key, value in metrics.items()}
        metadata.setdefault("metrics", {})
        return ModelArtifact(weights=save(state), metadata=metadata)

    @classmethod
    def from_artifact(cls, artifact: ModelArtifact) -> Self:
        """A fitted forecaster from an artifact (no training history: only the predictions)."""
        predictor = LSTMPredictor.from_artifact(artifact)
        train_data = artifact.metadata.get("train_config")
        train = TrainConfig.from_dict(train_data) if isinstance(train_data, dict) else None
        model = cls(predictor.model_config, train)
        model._predictor = predictor
        model._metadata = dict(artifact.metadata)
        return model


@dataclass(frozen=True, kw_only=True)
class _TrainedNetwork:
    network: LSTMNetwork
    history: tuple[EpochLosses, ...]
    best_epoch: int | None
    best_val_loss: float | None
    stopped_early: bool
    seconds: float
    device: str
    hardware: dict[str, float | None]


def _train_network(
    windows: TrainingWindows,
    spec: NetworkSpec,
    train: TrainConfig,
    epoch_sinks: Sequence[EpochSink],
) -> _TrainedNetwork:
    """Seeded Lightning fit with early stopping on validation loss; returns the best epoch's
    network (moved to CPU by the predictor)."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping
    from torch.utils.data import DataLoader, TensorDataset

    from forecasting.lightning_module import LSTMLightningModule

    with _quiet_lightning(), _torch_threads(train.num_threads):
        L.seed_everything(train.seed, workers=True, verbose=False)
        module = LSTMLightningModule(spec=spec, learning_rate=train.learning_rate)
        train_loader = DataLoader(
            TensorDataset(
                torch.from_numpy(windows.train_inputs), torch.from_numpy(windows.train_targets)
            ),
            batch_size=train.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(train.seed),
        )
        val_loader = DataLoader(
            TensorDataset(
                torch.from_numpy(windows.val_inputs), torch.from_numpy(windows.val_targets)
            ),
            batch_size=max(train.batch_size, 256),
        )
        stopper = EarlyStopping(monitor="val_loss", mode="min", patience=train.patience)
        best = BestWeightsCallback()
        losses = EpochLossCallback(epoch_sinks)
        hardware = HardwareCallback()
        trainer = L.Trainer(
            max_epochs=train.epochs,
            accelerator=train.accelerator,
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=train.progress_bar,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=1,
            callbacks=[stopper, best, losses, hardware],
        )
        started = time.perf_counter()
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)
        seconds = time.perf_counter() - started
        best.restore(module)
    return _TrainedNetwork(
        network=module.network,
        history=tuple(losses.history),
        best_epoch=best.best_epoch,
        best_val_loss=None if best.best_epoch is None else best.best_val_loss,
        stopped_early=stopper.stopped_epoch > 0,
        seconds=seconds,
        device=trainer.strategy.root_device.type,
        hardware=dict(hardware.summary),
    )


def _calibrated_predictor(
    network: LSTMNetwork, config: ModelConfig, history: pd.DataFrame, windows: TrainingWindows
) -> LSTMPredictor:
    """Split-conformal half-widths from the held-out validation windows' absolute residuals (in
    log-return space), computed through the same inference path the service uses."""
    from forecasting.conformal import conformal_quantiles

    unbounded = {level: np.full(config.horizon, np.inf) for level in INTERVAL_LEVELS}
    draft = LSTMPredictor(
        network=network, model_config=config, scalers=windows.scalers, quantiles=unbounded
    )
    predicted = draft.predict_log_returns(history, windows.split.validation)
    residuals = np.abs(windows.val_log_returns - predicted)
    return LSTMPredictor(
        network=network,
        model_config=config,
        scalers=windows.scalers,
        quantiles=conformal_quantiles(residuals, INTERVAL_LEVELS),
    )


def _metadata(
    summary: FitSummary,
    config: ModelConfig,
    train: TrainConfig,
    spec: NetworkSpec,
    scalers: dict[str, Any],
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "model_kind": "lstm",
        "model_config": config.to_dict(),
        "train_config": train.to_dict(),
        "network": spec.to_dict(),
        "scalers": scalers,
        "data": {
            "start": summary.data_start,
            "end": summary.data_end,
            "rows": summary.rows,
            "train_windows": summary.train_windows,
            "val_windows": summary.val_windows,
        },
        "training": {
            "epochs_run": summary.epochs_run,
            "best_epoch": summary.best_epoch,
            "best_val_loss": summary.best_val_loss,
            "stopped_early": summary.stopped_early,
            "seconds": round(summary.training_seconds, 3),
            "device": summary.device,
        },
        "versions": library_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
