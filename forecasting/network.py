"""The LSTM itself, a plain ``torch.nn.Module``: Lightning trains it, the predictor runs it without
Lightning, and an artifact rebuilds it from :class:`NetworkSpec` alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Final, Self

import torch
from torch import nn

from forecasting.config import HEADS, ModelConfig

#: The Student-t head's degrees of freedom, fixed rather than learned: daily returns' tails sit
#: around 3-6 degrees of freedom, a learned value drifts towards the normal on calm training
#: years, and the conformal calibration corrects the width whatever the tails.
STUDENT_T_DF: Final = 5.0
#: ``log`` of the Student-t density's constant: ``lgamma(v/2) - lgamma((v+1)/2) + log(v pi)/2``.
_T_LOG_NORMALISER: Final = (
    math.lgamma(STUDENT_T_DF / 2.0)
    - math.lgamma((STUDENT_T_DF + 1.0) / 2.0)
    + 0.5 * math.log(STUDENT_T_DF * math.pi)
)
#: Floor of the scale (in standardised target units) so the likelihood never divides by zero.
_MIN_SCALE: Final = 1e-4


@dataclass(frozen=True, kw_only=True)
class NetworkSpec:
    """The hyper-parameters that fix the shape of the state dict. Stored specs without a ``head``
    predate the Student-t head: they are point networks."""

    input_size: int
    hidden_size: int
    num_layers: int
    dropout: float
    horizon: int
    head: str = "student_t"

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}: expected one of {', '.join(HEADS)}")

    @classmethod
    def for_model(cls, config: ModelConfig) -> Self:
        """The network a model configuration calls for."""
        return cls(
            input_size=len(config.features),
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout,
            horizon=config.horizon,
            head=config.head,
        )

    @property
    def outputs(self) -> int:
        """Values per horizon step: 2 (location, scale) or 1."""
        return 2 if self.head == "student_t" else 1

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
            head=str(data.get("head", "point")),
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
        self.head = nn.Linear(spec.hidden_size, spec.horizon * spec.outputs)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(batch, lookback, features) -> (batch, horizon) for a point head, or
        (batch, 2, horizon) holding the location and the (positive) scale for a Student-t head,
        both in standardised target units."""
        sequence, _ = self.lstm(inputs)
        last = sequence[:, -1, :]
        output: torch.Tensor = self.head(self.dropout(last))
        if self.spec.head == "point":
            return output
        location, raw_scale = output.view(-1, 2, self.spec.horizon).unbind(dim=1)
        scale = nn.functional.softplus(raw_scale) + _MIN_SCALE
        return torch.stack([location, scale], dim=1)


def student_t_nll(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of ``targets`` (batch, H) under the Student-t head's
    (batch, 2, H) location and scale, with :data:`STUDENT_T_DF` degrees of freedom."""
    location, scale = outputs.unbind(dim=1)
    z = (targets - location) / scale
    per_value = (
        torch.log(scale)
        + 0.5 * (STUDENT_T_DF + 1.0) * torch.log1p(z * z / STUDENT_T_DF)
        + _T_LOG_NORMALISER
    )
    loss: torch.Tensor = per_value.mean()
    return loss
