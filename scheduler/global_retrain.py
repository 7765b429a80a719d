"""The ``retrain_global`` job: one global LSTM for the whole watchlist, and every symbol's
challenger judged with it as one more candidate, in one child process.

The global network needs one window shape, so it trains on the watched symbols whose horizon
and lookback are the worker's defaults; the others are listed as skipped (their per-symbol
``retrain`` jobs still train them). Each symbol's outcome is recorded exactly as a ``retrain``
job records it (:func:`scheduler.model_records.record_training_outcome`: the gate's verdict,
its events and the champion move commit together), and a new champion's forecast is queued.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace

import anyio.to_process
import msgspec
import pandas as pd
from anyio import BrokenWorkerProcess

from db.contracts import (
    JobRequest,
    RecordedModel,
    RetrainGlobalArguments,
    RetrainGlobalParams,
    RetrainGlobalResult,
    to_json,
)
from db.kinds import JobKind
from db.repositories import PriceRepository, SymbolRepository
from forecasting.artifacts import ModelArtifact
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.global_training import GlobalOutcome
from forecasting.limits import GLOBAL_EPOCHS, WINDOWS_PER_EPOCH
from forecasting.promotion import PromotionPolicy, parse_policy
from scheduler.config import TrainingDefaults
from scheduler.conversions import records_to_bars
from scheduler.ingest import enqueue_follow_ups
from scheduler.model_records import load_champion, record_training_outcome
from scheduler.runner import JobContext

logger = logging.getLogger(__name__)


class GlobalTrainingDiedError(RuntimeError):
    """The child process training the global model exited without an answer."""

    def __init__(self) -> None:
        super().__init__(
            "the global training process died before it finished (killed or out of memory); "
            "every champion is unchanged"
        )


@dataclass(frozen=True, kw_only=True)
class GlobalTrainingRequest:
    """Everything the child needs: every symbol's bars and champion, and the settings."""

    bars_by_symbol: dict[str, pd.DataFrame]
    champions: dict[str, ModelArtifact | None]
    configs: tuple[ModelConfig, TrainConfig, BacktestConfig]
    policy: PromotionPolicy
    warm_start_epochs: int | None
    tracking_uri: str | None
    artifact_root: str | None
    log_level: int = logging.INFO
    parent_pid: int = field(default_factory=os.getpid)
    niceness: int = 10


def global_configs(
    params: RetrainGlobalParams, defaults: TrainingDefaults
) -> tuple[ModelConfig, TrainConfig, BacktestConfig]:
    """The job's parameters over the worker's defaults (ranges checked by the configurations).

    The global network's epochs are sampled (``windows_per_epoch``, default
    :data:`~forecasting.limits.WINDOWS_PER_EPOCH`) and capped at
    :data:`~forecasting.limits.GLOBAL_EPOCHS` unless the job names its own: a pass over every
    window of 1,000 symbols would cost about 19 CPU-minutes per epoch on this kind of machine,
    and a fit that grows with the watchlist would not keep to its weekly budget."""
    train = defaults.train
    train = replace(
        train,
        epochs=params.epochs if params.epochs is not None else min(train.epochs, GLOBAL_EPOCHS),
        windows_per_epoch=params.windows_per_epoch or WINDOWS_PER_EPOCH.default,
    )
    backtest = defaults.backtest
    if params.folds is not None:
        backtest = replace(backtest, folds=params.folds)
    return defaults.model, train, backtest


def train_global_in_child(request: GlobalTrainingRequest) -> GlobalOutcome:
    """The global retrain (runs in the child process, like a symbol's training)."""
    from forecasting.global_training import train_global_challengers
    from scheduler.training_process import (
        _log_to_parent_stderr,
        die_with_parent,
        lower_priority,
        run_portably,
    )

    die_with_parent(request.parent_pid)
    lower_priority(request.niceness)
    _log_to_parent_stderr(request.log_level)
    return run_portably(
        train_global_challengers,
        bars_by_symbol=request.bars_by_symbol,
        configs=request.configs,
        policy=request.policy,
        champions=request.champions,
        warm_start_epochs=request.warm_start_epochs,
        tracking_uri=request.tracking_uri,
        artifact_root=request.artifact_root,
    )


async def _request(
    context: JobContext[RetrainGlobalArguments],
) -> tuple[GlobalTrainingRequest, dict[str, str]]:
    """The watched symbols that fit the global model's windows, their bars and champions."""
    params = context.arguments.params
    defaults = context.runtime.config.training
    configs = global_configs(params, defaults)
    model = configs[0]
    wanted = None if params.symbols is None else {s.upper() for s in params.symbols}
    bars: dict[str, pd.DataFrame] = {}
    champions: dict[str, ModelArtifact | None] = {}
    skipped: dict[str, str] = {}
    async with context.runtime.sessions() as session:
        for row in await SymbolRepository(session).list(active=True):
            if wanted is not None and row.symbol not in wanted:
                continue
            if (row.horizon, row.lookback) != (model.horizon, model.lookback):
                skipped[row.symbol] = (
                    f"horizon {row.horizon} / lookback {row.lookback} differ from the global "
                    f"model's {model.horizon} / {model.lookback}"
                )
                continue
            records = await PriceRepository(session).load(row.symbol)
            bars[row.symbol] = records_to_bars(records)
            champion = await load_champion(session, row.symbol)
            champions[row.symbol] = champion.artifact if champion else None
    request = GlobalTrainingRequest(
        bars_by_symbol=bars,
        champions=champions,
        configs=configs,
        policy=parse_policy(params.policy) if params.policy else defaults.policy,
        warm_start_epochs=params.warm_start_epochs,
        tracking_uri=defaults.tracking_uri,
        artifact_root=defaults.artifact_root,
        log_level=logging.getLogger().getEffectiveLevel(),
    )
    return request, skipped


async def retrain_global(context: JobContext[RetrainGlobalArguments]) -> RetrainGlobalResult:
    """Train in the child, then record each symbol's outcome and queue new champions' forecasts."""
    runtime = context.runtime
    request, skipped = await _request(context)
    logger.info(
        "global retrain on %d symbols (%d skipped)", len(request.bars_by_symbol), len(skipped)
    )
    try:
        outcome: GlobalOutcome = await anyio.to_process.run_sync(
            train_global_in_child, request, cancellable=True, limiter=runtime.train_limiter
        )
    except BrokenWorkerProcess as exc:
        raise GlobalTrainingDiedError from exc
    models: dict[str, RecordedModel] = {}
    enqueued: dict[str, str] = {}
    model, train, backtest = request.configs
    params = {
        **to_json(context.arguments.params),
        "model": model.to_dict(),
        "train": train.to_dict(),
        "backtest": backtest.to_dict(),
        "policy": request.policy.value,
        "global": True,
    }
    for symbol, trained in outcome.outcomes.items():
        recorded = await record_training_outcome(
            runtime.sessions,
            symbol=symbol,
            outcome=trained,
            params=params,
            job_id=context.job_id,
            tracking_uri=request.tracking_uri,
        )
        models[symbol] = recorded
        if recorded.promoted or recorded.served_plan_id is not None:
            # A new champion (or plan) serves at once instead of at the next close.
            queued = await enqueue_follow_ups(
                context, [JobRequest.for_symbol(JobKind.FORECAST, symbol)]
            )
            enqueued[f"{JobKind.FORECAST.value}:{symbol}"] = queued[JobKind.FORECAST.value]
    return RetrainGlobalResult(
        models=models,
        skipped={**skipped, **outcome.skipped},
        global_training=msgspec.to_builtins(outcome.global_training),
        enqueued=enqueued,
    )
