"""The LSTM itself, a plain ``torch.nn.Module``: Lightning trains it, the predictor runs it without
Lightning, and an artifact rebuilds it from :class:`NetworkSpec` alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Self

import torch
from torch import nn


@dataclass(frozen=True, kw_only=True)
class NetworkSpec:
    """The hyper-parameters that fix the shape of the state dict."""

    input_size: int
    hidden_size: int
    num_layers: int
    dropout: float
    horizon: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(
            input_size=int(data["input_size"]),
            hidden_size=int(data["hidden_size"]),
            num_layers=int(data["num_layers"]),
            dropout=float(data["dropout"]),
            horizon=int(data["horizon"]),
        )


class LSTMNetwork(nn.Module):
    """Stacked LSTM over the window; a linear head maps the last hidden state to all H steps at
    once (direct multi-step forecasting: no recursive feeding of its own errors)."""

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        self.lstm = nn.LSTM(
            input_size=spec.input_size,
            hidden_size=spec.hidden_size,
            num_layers=spec.num_layers,
            batch_first=True,
            # nn.LSTM applies dropout between layers only; it warns when there is one layer.
            dropout=spec.dropout if spec.num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(spec.hidden_size, spec.horizon)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(batch, lookback, features) -> (batch, horizon)."""
        sequence, _ = self.lstm(inputs)
        last = sequence[:, -1, :]
        output: torch.Tensor = self.head(self.dropout(last))
        return output
