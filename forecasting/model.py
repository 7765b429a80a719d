"""The LSTM forecaster: owns the data preparation, the Lightning Trainer, early stopping, seeding,
the conformal calibration and the artifact. The network itself lives in
:mod:`forecasting.network`, its training step in :mod:`forecasting.lightning_module`.

``fit(bars)`` -> ``predict(bars)`` / ``predict_log_returns(bars, origins)`` -> ``to_artifact()``;
``from_artifact`` gives back a model whose predictions are bit-identical.
"""

from __future__ import annotations

import contextlib
import logging
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
from forecasting.network import NetworkSpec
from forecasting.predictor import LSTMPredictor, quantiles_to_json
from forecasting.windowing import prepare_training_windows

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


@contextlib.contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    import torch

    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
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
        import lightning as L
        import torch
        from lightning.pytorch.callbacks import EarlyStopping
        from torch.utils.data import DataLoader, TensorDataset

        from forecasting.conformal import conformal_quantiles
        from forecasting.lightning_module import LSTMLightningModule
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
            losses = EpochLossCallback(self._epoch_sinks)
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
            device = trainer.strategy.root_device.type

        predictor = LSTMPredictor(
            network=module.network,
            model_config=config,
            scalers=windows.scalers,
            quantiles={level: np.full(config.horizon, np.inf) for level in INTERVAL_LEVELS},
        )
        predicted = predictor.predict_log_returns(history, windows.split.validation)
        residuals = np.abs(windows.val_log_returns - predicted)
        quantiles = conformal_quantiles(residuals, INTERVAL_LEVELS)
        self._predictor = LSTMPredictor(
            network=module.network,
            model_config=config,
            scalers=windows.scalers,
            quantiles=quantiles,
        )
        self.history = tuple(losses.history)
        self.hardware = dict(hardware.summary)
        dates = history["date"]
        self.summary = FitSummary(
            epochs_run=len(losses.history),
            best_epoch=best.best_epoch,
            best_val_loss=None if best.best_epoch is None else best.best_val_loss,
            stopped_early=stopper.stopped_epoch > 0,
            training_seconds=seconds,
            device=device,
            rows=len(history),
            train_windows=int(windows.split.train.size),
            val_windows=int(windows.split.validation.size),
            data_start=pd.Timestamp(dates.iloc[0]).date().isoformat(),
            data_end=pd.Timestamp(dates.iloc[-1]).date().isoformat(),
        )
        self._metadata = {
            "format_version": FORMAT_VERSION,
            "model_kind": self.model_kind,
            "model_config": config.to_dict(),
            "train_config": train.to_dict(),
            "network": spec.to_dict(),
            "scalers": windows.scalers.to_dict(),
            "conformal": quantiles_to_json(quantiles),
            "data": {
                "start": self.summary.data_start,
                "end": self.summary.data_end,
                "rows": self.summary.rows,
                "train_windows": self.summary.train_windows,
                "val_windows": self.summary.val_windows,
            },
            "training": {
                "epochs_run": self.summary.epochs_run,
                "best_epoch": self.summary.best_epoch,
                "best_val_loss": self.summary.best_val_loss,
                "stopped_early": self.summary.stopped_early,
                "seconds": round(seconds, 3),
                "device": device,
            },
            "versions": library_versions(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        logger.info(
            "fitted LSTM on %d rows (%s..%s) in %.1fs, %d epochs, best val loss %.4g on %s",
            self.summary.rows,
            self.summary.data_start,
            self.summary.data_end,
            seconds,
            self.summary.epochs_run,
            best.best_val_loss,
            device,
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
