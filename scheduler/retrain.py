"""The retrain job: train a challenger in a child process, record it (and the gate's verdict)
atomically, then queue a forecast so a new champion is used at once."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.to_process
from anyio import BrokenWorkerProcess

from db.kinds import JobKind
from db.repositories import (
    JobRepository,
    ModelVersionRepository,
    PriceRepository,
    SymbolRepository,
)
from forecasting.artifacts import ModelArtifact
from forecasting.calendar import DEFAULT_EXCHANGE
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from scheduler.config import TrainingDefaults
from scheduler.conversions import records_to_bars
from scheduler.enqueue import enqueue
from scheduler.ingest import fetch_history
from scheduler.models import record_training_outcome
from scheduler.params import RetrainParams
from scheduler.runner import JobContext
from scheduler.training_process import TrainingRequest, train_in_child

logger = logging.getLogger(__name__)

#: How often a training waiting for its symbol's ingest looks again.
INGEST_POLL_SECONDS = 1.0


class TrainingProcessDiedError(RuntimeError):
    """The child process training the model exited without an answer (killed, out of memory)."""

    def __init__(self, symbol: str) -> None:
        super().__init__(
            f"the training process for {symbol} died before it finished "
            "(killed or out of memory); the champion is unchanged"
        )
        self.symbol = symbol


class NotEnoughPricesError(LookupError):
    """Too few stored bars in the requested range to train anything."""

    def __init__(self, symbol: str, rows: int) -> None:
        super().__init__(f"only {rows} stored bars for {symbol} in the requested range")
        self.symbol = symbol
        self.rows = rows


def training_configs(
    params: RetrainParams, *, horizon: int, lookback: int, defaults: TrainingDefaults
) -> tuple[ModelConfig, TrainConfig, BacktestConfig]:
    """The job's parameters over the symbol's settings (``horizon``, ``lookback``) over the
    worker's defaults."""
    model_config = ModelConfig(
        lookback=params.lookback or lookback,
        horizon=params.horizon or horizon,
        hidden_size=defaults.hidden_size,
        num_layers=defaults.num_layers,
    )
    train_config = TrainConfig(
        epochs=params.epochs or (defaults.initial_epochs if params.initial else defaults.epochs),
        batch_size=params.batch_size or defaults.batch_size,
        max_history=defaults.max_history,
        accelerator=defaults.accelerator,
        num_threads=defaults.num_threads,
    )
    backtest_config = BacktestConfig(
        folds=params.folds or (defaults.initial_folds if params.initial else defaults.folds),
        test_size=defaults.test_size,
    )
    return model_config, train_config, backtest_config


async def _wait_for_pending_ingest(context: JobContext, symbol: str) -> None:
    """Train on the newest bars: the API queues a new symbol's backfill and its first training
    together, and a worker may pick the training first. Waits while an ingest of the symbol is
    queued or running, at most as long as an ingest may take."""
    runtime = context.runtime
    deadline = anyio.current_time() + runtime.config.timeout_for(JobKind.INGEST.value)
    while anyio.current_time() < deadline:
        async with runtime.sessions() as session:
            pending = await JobRepository(session).has_pending(
                symbol=symbol, kind=JobKind.INGEST.value
            )
        if not pending:
            return
        await anyio.sleep(INGEST_POLL_SECONDS)
    logger.warning("%s: training without waiting longer for its pending ingest", symbol)


async def retrain_symbol(context: JobContext, raw_params: dict[str, Any] | None) -> dict[str, Any]:
    runtime = context.runtime
    symbol = context.symbol
    if symbol is None:
        raise ValueError("retrain needs a symbol")
    params = RetrainParams.from_mapping(raw_params)
    defaults = runtime.config.training
    config = runtime.config
    async with runtime.sessions() as session:
        watched_row = await SymbolRepository(session).find(symbol)
    watched = watched_row is not None and watched_row.active
    if watched_row is not None and watched_row.active:
        horizon, lookback = watched_row.horizon, watched_row.lookback
        await _wait_for_pending_ingest(context, symbol)
    else:
        # An on-demand training of a symbol that is not watched: no ingest keeps its bars, so
        # fetch the requested history first (the original service trained any symbol).
        horizon, lookback = config.default_horizon, config.default_lookback
        async with runtime.sessions() as session:
            stored = await PriceRepository(session).load(
                symbol, start=params.start_date, end=params.end_date
            )
        if len(stored) < (params.lookback or lookback) + (params.horizon or horizon) + 2:
            await fetch_history(
                context,
                symbol,
                start=params.start_date,
                end=params.end_date,
                exchange=DEFAULT_EXCHANGE,
            )
    async with runtime.sessions() as session:
        records = await PriceRepository(session).load(
            symbol, start=params.start_date, end=params.end_date
        )
        versions = ModelVersionRepository(session)
        champion = await versions.champion(symbol)
        champion_artifact: ModelArtifact | None = None
        if champion is not None:
            row = await versions.artifact(champion.id)
            champion_artifact = ModelArtifact(weights=row.weights, metadata=row.metadata_json)
    model_config, train_config, backtest_config = training_configs(
        params, horizon=horizon, lookback=lookback, defaults=defaults
    )
    if len(records) < model_config.lookback + model_config.horizon + 2:
        raise NotEnoughPricesError(symbol, len(records))
    request = TrainingRequest(
        symbol=symbol,
        bars=records_to_bars(records),
        model_config=model_config,
        train_config=train_config,
        backtest_config=backtest_config,
        policy=params.policy or defaults.policy,
        champion=champion_artifact,
        tracking_uri=defaults.tracking_uri,
        model_name=params.model_name,
        artifact_root=defaults.artifact_root,
        log_level=logging.getLogger().getEffectiveLevel(),
    )
    logger.info(
        "%s: training a challenger on %d bars (champion: %s)",
        symbol,
        len(records),
        champion.id if champion else "none",
    )
    try:
        # cancellable: a shutdown that runs out of patience kills the child instead of waiting.
        outcome = await anyio.to_process.run_sync(
            train_in_child, request, cancellable=True, limiter=runtime.train_limiter
        )
    except BrokenWorkerProcess as exc:
        raise TrainingProcessDiedError(symbol) from exc
    recorded = await record_training_outcome(
        runtime.sessions,
        symbol=symbol,
        outcome=outcome,
        params={
            **params.to_dict(),
            "model": model_config.to_dict(),
            "train": train_config.to_dict(),
            "backtest": backtest_config.to_dict(),
            "policy": (params.policy or defaults.policy).value,
        },
        model_name=params.model_name,
        job_id=context.job_id,
        tracking_uri=defaults.tracking_uri,
    )
    enqueued: dict[str, str] = {}
    if recorded.promoted and watched:
        # A new champion serves at once instead of at the next close (forecasts are stored for
        # watched symbols only; an unwatched one is served by POST /predict).
        enqueued[JobKind.FORECAST.value] = await enqueue(
            runtime.scheduler,
            runtime.sessions,
            JobKind.FORECAST,
            symbol=symbol,
            kwargs={"symbol": symbol},
            result_expiration=runtime.config.job_result_expiration,
        )
    return {**recorded.to_dict(), "enqueued": enqueued}
