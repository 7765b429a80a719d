"""The shared vocabulary of the scheduler and the API: job kinds (APScheduler task ids) and event
types. Both sides import these names from here because they never import each other."""

from __future__ import annotations

from enum import StrEnum


class JobKind(StrEnum):
    """What a job does; the value is also the APScheduler task id the API enqueues by."""

    INGEST = "ingest"
    FORECAST = "forecast"
    EVALUATE = "evaluate"
    RETRAIN = "retrain"
    SYNC_SCHEDULES = "sync_schedules"
    #: One global LSTM for the whole watchlist, and every symbol's challenger beside it.
    RETRAIN_GLOBAL = "retrain_global"
    #: After an exchange's close: split its due symbols into batches and queue a batch job each.
    REFRESH = "refresh"
    #: One batch of a refresh: fetch, store, forecast and evaluate its symbols together.
    REFRESH_BATCH = "refresh_batch"


class EventType(StrEnum):
    """Events clients care about; stored in ``events`` and streamed over SSE."""

    SYMBOL_ADDED = "symbol.added"
    SYMBOL_UPDATED = "symbol.updated"
    SYMBOL_REMOVED = "symbol.removed"
    PRICES_INGESTED = "prices.ingested"
    FORECAST_READY = "forecast.ready"
    FORECAST_EVALUATED = "forecast.evaluated"
    MODEL_TRAINED = "model.trained"
    MODEL_PROMOTED = "model.promoted"
    MODEL_REJECTED = "model.rejected"
    JOB_QUEUED = "job.queued"
    JOB_SUCCEEDED = "job.succeeded"
    JOB_FAILED = "job.failed"
    PREDICTION_SERVED = "prediction.served"
    LISTING_CHECKED = "listing.checked"
    REPLAY_ADVANCED = "replay.advanced"


def schedule_id(kind: JobKind, symbol: str) -> str:
    """The stable id of a symbol's schedule, e.g. ``retrain:DIS`` (or, for the per-exchange
    refresh, of an exchange's: ``refresh:XNYS``)."""
    return f"{kind.value}:{symbol}"
