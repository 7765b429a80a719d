"""The LightningModule that trains :class:`~forecasting.network.LSTMNetwork`: loss, optimiser and
the logged ``train_loss`` / ``val_loss`` that early stopping and the callbacks read. The network
stays a plain module inside it, so inference never needs Lightning.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import nn

from forecasting.network import LSTMNetwork, NetworkSpec, student_t_nll


class LSTMLightningModule(L.LightningModule):
    """Adam on the scaled targets of every horizon step: the Student-t negative log-likelihood for a
    distributional head, the mean squared error for a point head."""

    def __init__(self, *, spec: NetworkSpec, learning_rate: float) -> None:
        super().__init__()
        self.network = LSTMNetwork(spec)
        self.learning_rate = learning_rate
        self.loss = student_t_nll if spec.head == "student_t" else nn.MSELoss()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.network(inputs)
        return output

    def _step_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, targets = batch
        loss: torch.Tensor = self.loss(self.network(inputs), targets)
        return loss

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        loss = self._step_loss(batch)
        # Epoch means weighted by batch size, so a short last batch does not skew the figure.
        self.log(
            "train_loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(batch[0]),
        )
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss = self._step_loss(batch)
        self.log(
            "val_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch[0])
        )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.network.parameters(), lr=self.learning_rate)
