"""The LSTM forecaster: owns the data preparation, the Lightning Trainer, early stopping, seeding
(one network or an ensemble of seeds), the calibration windows and the artifact. The network itself lives in
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
from typing import TYPE_CHECKING, Any, Final, Protocol, Self

import numpy as np
import numpy.typing as npt
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
from forecasting.windowing import OriginSplit, TrainingWindows, prepare_training_windows

if TYPE_CHECKING:
    from forecasting.candidates import IntervalRecipe

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
    cal_windows: int
    members: int
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
        warm_start: WarmStart | None = None,
    ) -> None:
        self.model_config = model_config or ModelConfig()
        self.train_config = train_config or TrainConfig()
        self._epoch_sinks = tuple(epoch_sinks)
        self.warm_start = warm_start
        self._predictor: LSTMPredictor | None = None
        self._metadata: dict[str, Any] = {}
        self.history: tuple[EpochLosses, ...] = ()
        self.summary: FitSummary | None = None
        self.hardware: dict[str, float | None] = {}
        self._split: OriginSplit | None = None
        self._offset = 0

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

        The windows split in time order (purge gaps between): training, validation (early
        stopping and the best epoch's weights; its residuals give the split-conformal reference
        half-widths) and calibration, which no training decision touches: its scores seed the
        served intervals' calibration (:meth:`calibration_rows`, :meth:`set_intervals`).
        """
        from forecasting.validation import clean_bars

        config, train = self.model_config, self.train_config
        cleaned = clean_bars(bars)
        history = cleaned
        if train.max_history is not None:
            history = cleaned.tail(train.max_history).reset_index(drop=True)
        self._offset = len(cleaned) - len(history)
        windows = prepare_training_windows(
            history,
            config,
            val_fraction=train.val_fraction,
            cal_fraction=train.calibration_fraction,
        )
        self._split = windows.split
        spec = NetworkSpec.for_model(config)
        runs = [
            _train_network(
                windows,
                spec,
                train,
                self._epoch_sinks if member == 0 else (),
                seed=train.seed + member,
                init_state=self.warm_start.state_for(member) if self.warm_start else None,
                max_epochs=self.warm_start.epochs if self.warm_start else None,
            )
            for member in range(train.ensemble)
        ]
        self._predictor = _calibrated_predictor(
            [run.network for run in runs], config, history, windows
        )
        first = runs[0]
        self.history = first.history
        self.hardware = first.hardware
        self.summary = _fit_summary(runs, history, windows)
        self._metadata = _metadata(self.summary, config, train, spec, windows.scalers.to_dict())
        self._metadata["training"]["warm_start_epochs"] = (
            self.warm_start.epochs if self.warm_start else None
        )
        self._metadata["conformal"] = quantiles_to_json(self._predictor.quantiles)
        logger.info(
            "fitted LSTM (%d member(s)) on %d rows (%s..%s) in %.1fs, %d epochs, best val loss "
            "%.4g on %s",
            len(runs),
            self.summary.rows,
            self.summary.data_start,
            self.summary.data_end,
            self.summary.training_seconds,
            self.summary.epochs_run,
            first.best_val_loss,
            first.device,
        )
        return self

    def _rows(self, origins: IndexArray) -> IndexArray:
        if self._split is None:
            raise NotFittedError("LSTMForecaster", "say which windows it trained on")
        rows: IndexArray = origins + self._offset
        return rows

    def calibration_rows(self) -> IndexArray:
        """The calibration origins of the last fit, as rows of the bars it was given."""
        return self._rows(self._split.calibration if self._split else np.empty(0, np.int64))

    def validation_rows(self) -> IndexArray:
        """The validation origins of the last fit, as rows of the bars it was given."""
        return self._rows(self._split.validation if self._split else np.empty(0, np.int64))

    def training_rows(self) -> IndexArray:
        """The training origins of the last fit, as rows of the bars it was given."""
        return self._rows(self._split.train if self._split else np.empty(0, np.int64))

    def set_intervals(self, recipe: IntervalRecipe) -> None:
        """Serve ``recipe``'s intervals from now on (and store it in the artifact)."""
        self._predictor = self.predictor.with_intervals(recipe)
        self._metadata["intervals"] = recipe.to_dict()

    def predict_distribution(
        self, bars: pd.DataFrame, origins: Sequence[int] | IndexArray
    ) -> tuple[FloatArray, FloatArray | None]:
        return self.predictor.predict_distribution(bars, origins)

    def predict_log_returns(
        self, bars: pd.DataFrame, origins: Sequence[int] | IndexArray
    ) -> FloatArray:
        return self.predictor.predict_log_returns(bars, origins)

    def predict(self, bars: pd.DataFrame, *, exchange: str = DEFAULT_EXCHANGE) -> Forecast:
        return self.predictor.predict(bars, exchange=exchange)

    def to_artifact(
        self,
        *,
        symbol: str | None = None,
        metrics: Mapping[str, float] | None = None,
        serving: Mapping[str, Any] | None = None,
    ) -> ModelArtifact:
        """The weights (safetensors) and the metadata needed to rebuild this model exactly."""
        from safetensors.torch import save

        if self._predictor is None:
            raise NotFittedError("LSTMForecaster", "be saved")
        state = {
            name: tensor.detach().cpu().contiguous()
            for name, tensor in self._predictor.state_dict().items()
        }
        metadata = dict(self._metadata)
        if symbol is not None:
            metadata["symbol"] = symbol
        if metrics is not None:
            metadata["metrics"] = {key: float(value) for key, value in metrics.items()}
        metadata.setdefault("metrics", {})
        if serving is not None:
            metadata["serving"] = dict(serving)
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
    steps: int = 0


class FitArrays(Protocol):
    """The scaled arrays one fit reads: :class:`TrainingWindows` of one symbol, or the stacked
    windows of many (:mod:`forecasting.global_model`)."""

    @property
    def train_inputs(self) -> npt.NDArray[np.float32]: ...
    @property
    def train_targets(self) -> npt.NDArray[np.float32]: ...
    @property
    def val_inputs(self) -> npt.NDArray[np.float32]: ...
    @property
    def val_targets(self) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True, kw_only=True)
class WarmStart:
    """Fine-tune from earlier weights instead of a fresh network: ``states`` one state dict per
    ensemble member (the last one is reused when there are fewer), at most ``epochs`` epochs.

    Whoever passes it is responsible for the weights not having seen the windows the result is
    judged on (see :func:`forecasting.backtest.walk_forward`)."""

    states: tuple[Mapping[str, Any], ...]
    epochs: int

    def state_for(self, member: int) -> Mapping[str, Any]:
        return self.states[min(member, len(self.states) - 1)]


def validation_sample(count: int, windows_per_epoch: int | None, seed: int) -> IndexArray:
    """The validation windows early stopping scores: all of them, or with ``windows_per_epoch``
    a fixed, seeded sample of at most half that many (in time order), the same every epoch so
    the epochs' losses compare like with like. A loss averaged over 16,000 windows is already
    far more precise than the epoch-to-epoch differences early stopping reacts to."""
    rows = np.arange(count)
    if windows_per_epoch is None or count <= windows_per_epoch // 2:
        return rows
    picked = np.random.default_rng(seed).choice(count, size=windows_per_epoch // 2, replace=False)
    return np.sort(picked)


def _train_network(
    windows: FitArrays,
    spec: NetworkSpec,
    train: TrainConfig,
    epoch_sinks: Sequence[EpochSink],
    *,
    seed: int,
    init_state: Mapping[str, Any] | None = None,
    max_epochs: int | None = None,
) -> _TrainedNetwork:
    """Seeded Lightning fit with early stopping on validation loss; returns the best epoch's
    network (moved to CPU by the predictor). ``init_state``: start from these weights (warm
    start) instead of the seed's fresh ones; ``max_epochs`` overrides ``train.epochs``."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping
    from torch.utils.data import DataLoader, RandomSampler, TensorDataset

    from forecasting.lightning_module import LSTMLightningModule

    with _quiet_lightning(), _torch_threads(train.num_threads):
        L.seed_everything(seed, workers=True, verbose=False)
        module = LSTMLightningModule(spec=spec, learning_rate=train.learning_rate)
        if init_state is not None:
            module.network.load_state_dict(dict(init_state), strict=True)
        train_set = TensorDataset(
            torch.from_numpy(windows.train_inputs), torch.from_numpy(windows.train_targets)
        )
        generator = torch.Generator().manual_seed(seed)
        per_epoch = train.windows_per_epoch
        if per_epoch is not None and len(train_set) > per_epoch:
            # A fresh draw each epoch (the sampler's permutation advances with its generator).
            sampler = RandomSampler(train_set, num_samples=per_epoch, generator=generator)
            train_loader = DataLoader(train_set, batch_size=train.batch_size, sampler=sampler)
        else:
            train_loader = DataLoader(
                train_set, batch_size=train.batch_size, shuffle=True, generator=generator
            )
        val_rows = validation_sample(len(windows.val_inputs), per_epoch, seed)
        val_loader = DataLoader(
            TensorDataset(
                torch.from_numpy(windows.val_inputs[val_rows]),
                torch.from_numpy(windows.val_targets[val_rows]),
            ),
            batch_size=max(train.batch_size, 256),
        )
        stopper = EarlyStopping(monitor="val_loss", mode="min", patience=train.patience)
        best = BestWeightsCallback()
        losses = EpochLossCallback(epoch_sinks)
        hardware = HardwareCallback()
        trainer = L.Trainer(
            max_epochs=max_epochs or train.epochs,
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
        steps=int(trainer.global_step),
    )


def _fit_summary(
    runs: Sequence[_TrainedNetwork], history: pd.DataFrame, windows: TrainingWindows
) -> FitSummary:
    """The first member's epochs and losses; the time is every member's together."""
    first = runs[0]
    dates = history["date"]
    return FitSummary(
        epochs_run=len(first.history),
        best_epoch=first.best_epoch,
        best_val_loss=first.best_val_loss,
        stopped_early=first.stopped_early,
        training_seconds=sum(run.seconds for run in runs),
        device=first.device,
        rows=len(history),
        train_windows=int(windows.split.train.size),
        val_windows=int(windows.split.validation.size),
        cal_windows=int(windows.split.calibration.size),
        members=len(runs),
        data_start=pd.Timestamp(dates.iloc[0]).date().isoformat(),
        data_end=pd.Timestamp(dates.iloc[-1]).date().isoformat(),
    )


def _calibrated_predictor(
    networks: Sequence[LSTMNetwork],
    config: ModelConfig,
    history: pd.DataFrame,
    windows: TrainingWindows,
) -> LSTMPredictor:
    """The reference split-conformal half-widths from the validation windows' absolute residuals
    (in log-return space), computed through the same inference path the service uses. The
    served intervals are set later from the calibration split (:meth:`set_intervals`)."""
    from forecasting.conformal import conformal_quantiles

    unbounded = {level: np.full(config.horizon, np.inf) for level in INTERVAL_LEVELS}
    draft = LSTMPredictor(
        networks=networks, model_config=config, scalers=windows.scalers, quantiles=unbounded
    )
    predicted = draft.predict_log_returns(history, windows.split.validation)
    residuals = np.abs(windows.val_log_returns - predicted)
    return LSTMPredictor(
        networks=networks,
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
        "network": {**spec.to_dict(), "members": summary.members},
        "scalers": scalers,
        "data": {
            "start": summary.data_start,
            "end": summary.data_end,
            "rows": summary.rows,
            "train_windows": summary.train_windows,
            "val_windows": summary.val_windows,
            "cal_windows": summary.cal_windows,
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
