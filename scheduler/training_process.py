"""What runs in the training child process: one call of ``forecasting.training.train_challenger``.

Training is CPU-bound for minutes and imports Lightning; in a child process it never blocks the
worker's event loop, its memory goes back to the system when the process is retired, and a
crash (out of memory, a kill) costs one job, not the worker. The request and the outcome are plain
values: they cross the process boundary through anyio's worker-process pipe.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from forecasting.artifacts import ModelArtifact
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.promotion import PromotionPolicy

if TYPE_CHECKING:
    from forecasting.training import TrainingOutcome


@dataclass(frozen=True, kw_only=True)
class TrainingRequest:
    """Everything one training needs; built by the retrain task from the database."""

    symbol: str
    bars: pd.DataFrame
    model_config: ModelConfig
    train_config: TrainConfig
    backtest_config: BacktestConfig
    policy: PromotionPolicy
    champion: ModelArtifact | None
    tracking_uri: str | None
    model_name: str | None
    artifact_root: str | None
    log_level: int = logging.INFO


def _log_to_parent_stderr(level: int) -> None:
    # anyio points the child's sys.stderr at /dev/null to keep its pipe clean, but file
    # descriptor 2 is still the parent's stderr: send the training progress there.
    root = logging.getLogger()
    if any(getattr(handler, "_stockcast_child", False) for handler in root.handlers):
        return
    stream = os.fdopen(os.dup(2), "w", buffering=1)
    handler = logging.StreamHandler(stream)
    handler._stockcast_child = True  # type: ignore[attr-defined]
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s [train {os.getpid()}] %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)
    sys.stderr = stream


def train_in_child(request: TrainingRequest) -> TrainingOutcome:
    """Train and judge one challenger (runs in the child process)."""
    from forecasting.training import train_challenger

    _log_to_parent_stderr(request.log_level)
    return train_challenger(
        symbol=request.symbol,
        bars=request.bars,
        model_config=request.model_config,
        train_config=request.train_config,
        backtest_config=request.backtest_config,
        policy=request.policy,
        champion=request.champion,
        tracking_uri=request.tracking_uri,
        model_name=request.model_name,
        artifact_root=request.artifact_root,
    )
