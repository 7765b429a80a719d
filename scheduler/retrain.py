"""The retrain job: train a challenger in a child process, record it (and the gate's verdict)
atomically, then queue a forecast so a new champion is used at once.

The steps, in order: the job's parameters over the symbol's settings over the worker's defaults
make the configurations (a parameter out of range fails the job before any work); the bars are
made ready (a watched symbol's pending ingest is awaited, an unwatched symbol's history fetched);
the child trains and judges; the outcome is recorded; a promoted champion's forecast is queued.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import anyio
import anyio.to_process
import msgspec
from anyio import BrokenWorkerProcess

from db.contracts import (
    JobRequest,
    JobResult,
    RecordedModel,
    RetrainArguments,
    RetrainParams,
    RetrainResult,
    to_json,
)
from db.kinds import JobKind
from db.repositories import JobRepository, PriceRepository, SymbolRepository
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.exchanges import infer_exchange
from forecasting.promotion import PromotionPolicy, parse_policy
from scheduler.config import TrainingDefaults
from scheduler.conversions import records_to_bars
from scheduler.ingest import enqueue_follow_ups, fetch_history
from scheduler.model_records import load_champion, record_training_outcome
from scheduler.runner import JobContext, until_stored
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
    worker's defaults. The configurations check every range (``forecasting.limits``):
    ``InvalidConfigError`` names the parameter that is out of it."""
    initial = params.initial
    model = replace(
        defaults.model,
        lookback=_given(params.lookback, lookback),
        horizon=_given(params.horizon, horizon),
    )
    train = replace(
        defaults.train,
        epochs=_given(params.epochs, defaults.initial_epochs if initial else defaults.train.epochs),
        batch_size=_given(params.batch_size, defaults.train.batch_size),
    )
    backtest = replace(
        defaults.backtest,
        folds=_given(params.folds, defaults.initial_folds if initial else defaults.backtest.folds),
    )
    return model, train, backtest


def _given(value: int | None, default: int) -> int:
    """A parameter when it was given (0 included: the configuration refuses it), else the
    default."""
    return default if value is None else value


async def retrain_symbol(context: JobContext[RetrainArguments]) -> JobResult:
    runtime = context.runtime
    symbol, params = context.arguments.symbol, context.arguments.params
    defaults = runtime.config.training
    policy = parse_policy(params.policy) if params.policy else defaults.policy
    async with runtime.sessions() as session:
        row = await SymbolRepository(session).find(symbol)
    watched = row if row is not None and row.active else None
    # An unwatched symbol (trained on demand) takes the worker's default settings.
    configs = training_configs(
        params,
        horizon=watched.horizon if watched else defaults.model.horizon,
        lookback=watched.lookback if watched else defaults.model.lookback,
        defaults=defaults,
    )
    if watched:
        await _wait_for_pending_ingest(context, symbol)
    else:
        # A removed symbol keeps the exchange it was watched on; another is on its ticker's.
        exchange = row.exchange if row is not None else infer_exchange(symbol)
        await _fetch_unwatched_history(context, configs[0], exchange)
    request = await _training_request(context, configs, policy)
    recorded = await _train_and_record(context, request)
    enqueued: dict[str, str] = {}
    if (recorded.promoted or recorded.served_plan_id is not None) and watched:
        # A new champion (or plan) serves at once instead of at the next close (forecasts are
        # stored for watched symbols only; an unwatched one is served by POST /predict).
        enqueued = await enqueue_follow_ups(
            context, [JobRequest.for_symbol(JobKind.FORECAST, symbol)]
        )
    return RetrainResult(**msgspec.structs.asdict(recorded), enqueued=enqueued)


async def _wait_for_pending_ingest(context: JobContext[RetrainArguments], symbol: str) -> None:
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


async def _fetch_unwatched_history(
    context: JobContext[RetrainArguments], model: ModelConfig, exchange: str
) -> None:
    """An on-demand training of a symbol that is not watched: no ingest keeps its bars, so the
    requested history is fetched first when too little of it is stored (the original service
    trained any symbol)."""
    symbol, params = context.arguments.symbol, context.arguments.params
    async with context.runtime.sessions() as session:
        stored = await PriceRepository(session).load(
            symbol, start=params.start_date, end=params.end_date
        )
    if len(stored) < model.lookback + model.horizon + 2:
        await fetch_history(
            context, symbol, start=params.start_date, end=params.end_date, exchange=exchange
        )


async def _training_request(
    context: JobContext[RetrainArguments],
    configs: tuple[ModelConfig, TrainConfig, BacktestConfig],
    policy: PromotionPolicy,
) -> TrainingRequest:
    """Everything the child needs, read from the database: the bars and the serving champion."""
    symbol, params = context.arguments.symbol, context.arguments.params
    model, train, backtest = configs
    async with context.runtime.sessions() as session:
        records = await PriceRepository(session).load(
            symbol, start=params.start_date, end=params.end_date
        )
        champion = await load_champion(session, symbol)
    if len(records) < model.lookback + model.horizon + 2:
        raise NotEnoughPricesError(symbol, len(records))
    logger.info(
        "%s: training a challenger on %d bars (champion: %s)",
        symbol,
        len(records),
        champion.version_id if champion else "none",
    )
    defaults = context.runtime.config.training
    return TrainingRequest(
        symbol=symbol,
        bars=records_to_bars(records),
        model_config=model,
        train_config=train,
        backtest_config=backtest,
        policy=policy,
        champion=champion.artifact if champion else None,
        tracking_uri=defaults.tracking_uri,
        model_name=params.model_name,
        artifact_root=defaults.artifact_root,
        log_level=logging.getLogger().getEffectiveLevel(),
    )


async def _train_and_record(
    context: JobContext[RetrainArguments], request: TrainingRequest
) -> RecordedModel:
    """Train in the child process, then record the outcome (and the gate's verdict) at once."""
    runtime = context.runtime
    try:
        # cancellable: a shutdown that runs out of patience kills the child instead of waiting.
        outcome = await anyio.to_process.run_sync(
            train_in_child, request, cancellable=True, limiter=runtime.train_limiter
        )
    except BrokenWorkerProcess as exc:
        raise TrainingProcessDiedError(request.symbol) from exc
    params = {
        **to_json(context.arguments.params),
        "model": request.model_config.to_dict(),
        "train": request.train_config.to_dict(),
        "backtest": request.backtest_config.to_dict(),
        "policy": request.policy.value,
    }

    async def record() -> RecordedModel:
        return await record_training_outcome(
            runtime.sessions,
            symbol=request.symbol,
            outcome=outcome,
            params=params,
            model_name=request.model_name,
            job_id=context.job_id,
            tracking_uri=request.tracking_uri,
        )

    # The training is done: a database that cannot take it now (a full disk, a lock, a
    # restart) is waited for, instead of throwing away minutes to hours of CPU. Each try is
    # one transaction, so nothing is recorded twice.
    return await until_stored(record, what=f"the {request.symbol} model of job {context.job_id}")
