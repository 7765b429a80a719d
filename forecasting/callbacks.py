"""Lightning callbacks of a fit: the per-epoch losses (handed to sinks such as the MLflow run),
the best weights by validation loss, and hardware use sampled while the model trains.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

if TYPE_CHECKING:
    from forecasting.hardware import HardwareMonitor


@dataclass(frozen=True, kw_only=True)
class EpochLosses:
    """Mean training and validation loss (scaled MSE) of one epoch; epochs count from 0."""

    epoch: int
    train_loss: float
    val_loss: float


#: Receives each epoch's losses as soon as the epoch ends (MLflow, a job's progress, a test).
EpochSink = Callable[[EpochLosses], None]


def _metric(trainer: L.Trainer, name: str) -> float:
    value = trainer.callback_metrics.get(name)
    return math.nan if value is None else float(value)


class EpochLossCallback(Callback):
    """Collects :class:`EpochLosses` after each training epoch (validation has run by then)."""

    def __init__(self, sinks: Sequence[EpochSink] = ()) -> None:
        self.sinks = tuple(sinks)
        self.history: list[EpochLosses] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        losses = EpochLosses(
            epoch=trainer.current_epoch,
            train_loss=_metric(trainer, "train_loss"),
            val_loss=_metric(trainer, "val_loss"),
        )
        self.history.append(losses)
        for sink in self.sinks:
            sink(losses)


class BestWeightsCallback(Callback):
    """Keeps a CPU copy of the weights of the epoch with the lowest validation loss.

    Early stopping halts ``patience`` epochs after the best one; without checkpoint files (we
    write our own artifacts) this is how the model returns to its best epoch.
    """

    def __init__(self) -> None:
        self.best_val_loss = math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        val_loss = _metric(trainer, "val_loss")
        if math.isfinite(val_loss) and val_loss < self.best_val_loss:
            self.best_val_loss = val_loss
            self.best_epoch = trainer.current_epoch
            self.best_state = {
                name: tensor.detach().to("cpu", copy=True)
                for name, tensor in pl_module.state_dict().items()
            }

    def restore(self, pl_module: L.LightningModule) -> None:
        """Load the best weights back into ``pl_module`` (no-op if validation never ran)."""
        if self.best_state is not None:
            pl_module.load_state_dict(self.best_state, strict=True)


class HardwareCallback(Callback):
    """Samples process CPU, RSS, system RAM and (when present) GPU use for the whole fit."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self._monitor: HardwareMonitor | None = None
        self.summary: dict[str, float | None] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from forecasting.hardware import HardwareMonitor

        self._monitor = HardwareMonitor(interval_s=self.interval_s)
        self._monitor.__enter__()

    def _stop(self) -> None:
        if self._monitor is not None:
            self._monitor.__exit__(None, None, None)
            self.summary = self._monitor.summary()
            self._monitor = None

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._stop()
