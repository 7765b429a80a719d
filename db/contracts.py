"""The contract between the API and the scheduler, declared once: what a job of each kind is given
(its APScheduler keyword arguments) and what it answers, and the payload of every event.

The two sides never import each other; they meet in the database and APScheduler's data store, so
the shapes they write there live here, in a leaf package both import. Everything is a msgspec
``Struct``: a job's arguments are decoded (and so checked) by the worker that runs it, an event's
payload is written from its struct and nowhere else, so it has one shape wherever it is written.

The value ranges of a model's settings (horizon, lookback, epochs ...) belong to
``forecasting.limits``, which this package may not import: the API checks them at its edge and the
worker when it builds the model's configuration, both from those constants.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Final, Literal

import msgspec

from db.kinds import EventType, JobKind

#: A label for a trained model: letters, digits, ``_``, ``.``, ``-``; 1-64 characters.
MODEL_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
MODEL_NAME_MAX_LENGTH: Final = 64
_MODEL_NAME_RE: Final = re.compile(MODEL_NAME_PATTERN)


class _Value(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Keyword-only, immutable, and strict: an unknown key is an error, not silently dropped.

    Subclasses inherit these options; they repeat ``frozen``/``kw_only`` for the type checker.
    """


def to_json(value: msgspec.Struct) -> dict[str, Any]:
    """A struct as the JSON object stored in the data store, ``job_runs`` or ``events``."""
    built = msgspec.to_builtins(value)
    if not isinstance(built, dict):
        raise TypeError(f"{type(value).__name__} is not an object")
    return built


# --------------------------------------------------------------------------- parameter rules


def today_utc() -> date:
    """Today in UTC: the reference for "not in the future" on every host alike."""
    return datetime.now(UTC).date()


def check_training_period(start: date | None, end: date | None) -> None:
    """The rule for a training's date range, checked by the API and by the worker alike.

    Neither end may lie in the future (there are no prices there), and ``end`` must come strictly
    after ``start``: a one-day range holds one bar, and no model reads fewer than ``lookback +
    horizon`` of them, so ``start == end`` is refused up front instead of failing in the worker.
    """
    today = today_utc()
    for name, value in (("start_date", start), ("end_date", end)):
        if value is not None and value > today:
            raise ValueError(f"{name} {value.isoformat()} is in the future")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"end_date {end.isoformat()} must be after start_date {start.isoformat()}")


# --------------------------------------------------------------------------- job arguments


class RetrainParams(_Value, omit_defaults=True, frozen=True, kw_only=True):
    """The optional settings of one training; what is not given comes from the symbol's settings
    and the worker's defaults. ``policy`` names a ``forecasting.promotion.PromotionPolicy``;
    ``initial`` marks the short first training of a newly watched symbol."""

    model_name: (
        Annotated[str, msgspec.Meta(pattern=MODEL_NAME_PATTERN, max_length=MODEL_NAME_MAX_LENGTH)]
        | None
    ) = None
    start_date: date | None = None
    end_date: date | None = None
    epochs: int | None = None
    batch_size: int | None = None
    horizon: int | None = None
    lookback: int | None = None
    folds: int | None = None
    policy: str | None = None
    initial: bool = False

    def __post_init__(self) -> None:
        check_training_period(self.start_date, self.end_date)


class JobArguments(_Value, frozen=True, kw_only=True):
    """The keyword arguments of a job's task function, as APScheduler stores them (JSON)."""


class SymbolArguments(JobArguments, frozen=True, kw_only=True):
    """``ingest``, ``forecast`` and ``evaluate`` concern one symbol and take nothing else."""

    symbol: str


class RetrainArguments(JobArguments, frozen=True, kw_only=True):
    symbol: str
    params: RetrainParams = msgspec.field(default_factory=RetrainParams)


class SyncSchedulesArguments(JobArguments, frozen=True, kw_only=True):
    """``sync_schedules`` reads the whole watchlist."""


class RetrainGlobalParams(_Value, omit_defaults=True, frozen=True, kw_only=True):
    """The optional settings of a global retrain (the worker's defaults otherwise).
    ``warm_start_epochs``: fine-tune from the champion's weights with at most this many epochs
    (later backtest folds from the previous fold's); None trains from scratch. ``symbols``:
    only these watched symbols (default: the whole watchlist). ``windows_per_epoch``: training
    windows drawn per epoch (the worker's default otherwise)."""

    epochs: int | None = None
    folds: int | None = None
    warm_start_epochs: Annotated[int, msgspec.Meta(ge=1, le=500)] | None = None
    policy: str | None = None
    symbols: list[str] | None = None
    windows_per_epoch: Annotated[int, msgspec.Meta(ge=1024, le=10_000_000)] | None = None


class RetrainGlobalArguments(JobArguments, frozen=True, kw_only=True):
    """``retrain_global`` trains for the whole watchlist."""

    params: RetrainGlobalParams = msgspec.field(default_factory=RetrainGlobalParams)


class RefreshArguments(JobArguments, frozen=True, kw_only=True, omit_defaults=True):
    """``refresh``: the exchange (ISO MIC) whose session just closed; with ``symbols``, only
    those (a batch just registered: their backfill, first forecast and first training). The
    schedule's jobs carry the exchange alone."""

    exchange: str
    symbols: list[str] | None = None


class RefreshBatchArguments(JobArguments, frozen=True, kw_only=True):
    """``refresh_batch``: some of an exchange's symbols, refreshed up to ``session`` (the closed
    session the ``refresh`` job that split them saw)."""

    exchange: str
    session: date
    symbols: list[str]


ARGUMENTS_OF: Final[dict[JobKind, type[JobArguments]]] = {
    JobKind.INGEST: SymbolArguments,
    JobKind.FORECAST: SymbolArguments,
    JobKind.EVALUATE: SymbolArguments,
    JobKind.RETRAIN: RetrainArguments,
    JobKind.SYNC_SCHEDULES: SyncSchedulesArguments,
    JobKind.RETRAIN_GLOBAL: RetrainGlobalArguments,
    JobKind.REFRESH: RefreshArguments,
    JobKind.REFRESH_BATCH: RefreshBatchArguments,
}


def decode_arguments(kind: JobKind, kwargs: dict[str, Any]) -> JobArguments:
    """A job's stored keyword arguments as its kind's struct; raises ``msgspec.ValidationError``
    (a ``ValueError``) naming the bad field."""
    return msgspec.convert(kwargs, ARGUMENTS_OF[kind])


class JobRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A job to enqueue: its kind (the task id), the symbol it is recorded under, its arguments."""

    kind: JobKind
    symbol: str | None
    arguments: JobArguments

    def __post_init__(self) -> None:
        expected = ARGUMENTS_OF[self.kind]
        if type(self.arguments) is not expected:
            raise TypeError(f"a {self.kind.value} job takes {expected.__name__}")

    @classmethod
    def for_symbol(cls, kind: JobKind, symbol: str) -> JobRequest:
        """An ``ingest``, ``forecast`` or ``evaluate`` of ``symbol``."""
        return cls(kind=kind, symbol=symbol, arguments=SymbolArguments(symbol=symbol))

    @classmethod
    def retrain(cls, symbol: str, params: RetrainParams | None = None) -> JobRequest:
        arguments = RetrainArguments(symbol=symbol, params=params or RetrainParams())
        return cls(kind=JobKind.RETRAIN, symbol=symbol, arguments=arguments)

    @classmethod
    def retrain_global(cls, params: RetrainGlobalParams | None = None) -> JobRequest:
        """The global retrain: the whole watchlist, so not recorded under a symbol."""
        arguments = RetrainGlobalArguments(params=params or RetrainGlobalParams())
        return cls(kind=JobKind.RETRAIN_GLOBAL, symbol=None, arguments=arguments)

    @classmethod
    def sync_schedules(cls, symbol: str | None = None) -> JobRequest:
        """A schedule sync; ``symbol`` is the one whose change asked for it (for the history)."""
        return cls(kind=JobKind.SYNC_SCHEDULES, symbol=symbol, arguments=SyncSchedulesArguments())

    @classmethod
    def refresh(cls, exchange: str, symbols: list[str] | None = None) -> JobRequest:
        """The refresh of ``exchange``'s symbols after its close, or of ``symbols`` only (not
        recorded under a symbol)."""
        arguments = RefreshArguments(exchange=exchange, symbols=symbols)
        return cls(kind=JobKind.REFRESH, symbol=None, arguments=arguments)

    @classmethod
    def refresh_batch(cls, exchange: str, session: date, symbols: list[str]) -> JobRequest:
        arguments = RefreshBatchArguments(exchange=exchange, session=session, symbols=symbols)
        return cls(kind=JobKind.REFRESH_BATCH, symbol=None, arguments=arguments)

    @property
    def kwargs(self) -> dict[str, Any]:
        return to_json(self.arguments)


# --------------------------------------------------------------------------- job results


class JobResult(_Value, frozen=True, kw_only=True):
    """What a job answers: stored in ``job_runs.result`` and in its ``job.succeeded`` event."""


class Skipped(JobResult, frozen=True, kw_only=True):
    """The job had nothing to do (a symbol no longer watched, a duplicate schedule fire)."""

    skipped: str


class IngestResult(JobResult, frozen=True, kw_only=True):
    rows: int
    first_date: date | None
    last_date: date | None
    full_refresh: bool
    #: Follow-up jobs by kind, with their ids.
    enqueued: dict[str, str]
    #: Where the source's own report of the listing (exchange, currency, time zone) differs from
    #: the symbol's: one sentence each (also a ``listing.checked`` event when they change).
    listing_warnings: list[str] = msgspec.field(default_factory=list)


class EvaluateResult(JobResult, frozen=True, kw_only=True):
    filled: int
    up_to: date | None


class RecordedModel(JobResult, frozen=True, kw_only=True):
    """What became of a trained challenger once recorded (by a retrain job or the CLI)."""

    model_version_id: int
    symbol: str
    promoted: bool
    reason: str
    previous_champion_id: int | None
    #: Whether the MLflow registry's ``champion`` alias was moved too.
    alias_set: bool
    #: The served plan this retrain made (None: the symbol's plan is unchanged).
    served_plan_id: int | None = None


class RetrainResult(RecordedModel, frozen=True, kw_only=True):
    #: Follow-up jobs by kind (a promoted champion's forecast), with their ids.
    enqueued: dict[str, str]


class RetrainGlobalResult(JobResult, frozen=True, kw_only=True):
    """Each symbol's recorded challenger, the symbols left out (and why), what the global
    network's final fit did, and the follow-up forecasts of new champions."""

    models: dict[str, RecordedModel]
    skipped: dict[str, str]
    global_training: dict[str, Any]
    enqueued: dict[str, str]


class RefreshPlanned(JobResult, frozen=True, kw_only=True):
    """What a ``refresh`` job queued: its exchange's due symbols, split into batch jobs."""

    exchange: str
    session: date
    symbols: int
    #: The batch jobs' ids, in order.
    batches: list[str]


class RefreshBatchResult(JobResult, frozen=True, kw_only=True):
    """What one refresh batch did, symbol by symbol counted; a symbol that failed failed alone."""

    session: date
    symbols: int
    #: Bars upserted, over every symbol of the batch.
    rows: int
    #: Symbols that got a new forecast.
    forecast: int
    #: Symbols that already had a forecast for their last bar (a re-run, or no new bar).
    already_forecast: int
    #: Forecast steps whose actual close was filled in.
    evaluated: int
    #: Follow-up jobs (a first training of a symbol without a model), by symbol.
    enqueued: dict[str, str] = msgspec.field(default_factory=dict)
    #: Symbols that failed, with the reason (at most ``FAILURES_KEPT`` of them; ``failed_count``
    #: counts all).
    failed: dict[str, str] = msgspec.field(default_factory=dict)
    failed_count: int = 0


class SyncResult(JobResult, frozen=True, kw_only=True):
    """What a schedule sync changed, by schedule id."""

    added: list[str]
    replaced: list[str]
    removed: list[str]
    unchanged: int
    #: Schedules that could not be registered, with the reason.
    failed: dict[str, str]


# --------------------------------------------------------------------------- event payloads


class EventPayload(_Value, frozen=True, kw_only=True):
    """The payload of one event type; ``event_type`` says which."""

    event_type: ClassVar[EventType]


class SymbolAdded(EventPayload, frozen=True, kw_only=True):
    event_type = EventType.SYMBOL_ADDED
    horizon: int
    lookback: int
    retrain_cadence: str
    #: The exchange (ISO MIC) the symbol is dated and scheduled on; absent in older events.
    exchange: str | None = None


class SymbolUpdated(SymbolAdded, frozen=True, kw_only=True):
    event_type = EventType.SYMBOL_UPDATED


class SymbolRemoved(EventPayload, frozen=True, kw_only=True):
    event_type = EventType.SYMBOL_REMOVED


class PricesIngested(EventPayload, frozen=True, kw_only=True):
    """New or corrected daily bars were stored, by the ingest job, by a training that fetched the
    history of an unwatched symbol, or by an on-demand prediction that topped up stale prices."""

    event_type = EventType.PRICES_INGESTED
    rows: int
    first_date: date
    last_date: date
    #: The kind of price source (``yfinance``, ``csv``, ``sample``): never a server path.
    source: str
    via: Literal["ingest", "retrain", "predict"]
    #: The whole history was fetched again because the source re-adjusted it.
    full_refresh: bool = False
    job_id: str | None = None


class ForecastReady(JobResult, EventPayload, frozen=True, kw_only=True):
    """A new forecast was stored; also the forecast job's result."""

    event_type = EventType.FORECAST_READY
    issued_at: datetime
    model_kind: str
    model_version_id: int | None
    steps: int
    last_observed_date: date


class ForecastEvaluated(EventPayload, frozen=True, kw_only=True):
    event_type = EventType.FORECAST_EVALUATED
    filled: int
    up_to: date
    job_id: str | None


class ModelTrained(EventPayload, frozen=True, kw_only=True):
    event_type = EventType.MODEL_TRAINED
    model_version_id: int
    job_id: str | None
    metrics: dict[str, float]
    train_start: date | None
    train_end: date | None


class ModelPromoted(EventPayload, frozen=True, kw_only=True):
    event_type = EventType.MODEL_PROMOTED
    model_version_id: int
    previous_champion_id: int | None
    reason: str
    metrics: dict[str, float]


class ModelRejected(EventPayload, frozen=True, kw_only=True):
    event_type = EventType.MODEL_REJECTED
    model_version_id: int
    reason: str
    metrics: dict[str, float]


class JobQueued(EventPayload, frozen=True, kw_only=True):
    event_type = EventType.JOB_QUEUED
    job_id: str
    kind: str


class JobSucceeded(EventPayload, frozen=True, kw_only=True):
    event_type = EventType.JOB_SUCCEEDED
    job_id: str
    kind: str
    result: dict[str, Any]


class JobFailed(EventPayload, frozen=True, kw_only=True):
    event_type = EventType.JOB_FAILED
    job_id: str
    kind: str
    #: The job's final status: ``failed``, ``abandoned``, ``cancelled`` or ``missed``.
    status: str
    error: str
    attempts: int


class PredictionServed(EventPayload, frozen=True, kw_only=True):
    event_type = EventType.PREDICTION_SERVED
    model_version_id: int
    latency_ms: float
    inference_ms: float
    model_cached: bool


class ListingNote(_Value, frozen=True, kw_only=True):
    """One field on which a price source's report of a listing differs from the symbol's."""

    field: str
    expected: str
    reported: str
    message: str


class ListingChecked(EventPayload, frozen=True, kw_only=True):
    """What a price source reported about a symbol's listing differs from what it said before,
    compared with the symbol's exchange: disagreements found, or (empty) resolved. Written only
    on a change, so a lasting disagreement is one event, not one per ingest."""

    event_type = EventType.LISTING_CHECKED
    #: The exchange the symbol was compared as (its watchlist exchange then).
    exchange: str
    #: The kind of price source that reported (``yfinance``).
    source: str
    disagreements: list[ListingNote]
    job_id: str | None = None


class ReplayAdvanced(EventPayload, frozen=True, kw_only=True):
    """The market replay's simulated clock moved to ``session`` (or started there)."""

    event_type = EventType.REPLAY_ADVANCED
    session: date
    #: Sessions replayed so far and in all (``index`` counts from 0: the data's first session).
    index: int
    total: int
    first: date
    last: date
    #: The data has ended: the replay stays on its last session.
    finished: bool


PAYLOAD_OF: Final[dict[EventType, type[EventPayload]]] = {
    payload.event_type: payload
    for payload in (
        SymbolAdded,
        SymbolUpdated,
        SymbolRemoved,
        PricesIngested,
        ForecastReady,
        ForecastEvaluated,
        ModelTrained,
        ModelPromoted,
        ModelRejected,
        JobQueued,
        JobSucceeded,
        JobFailed,
        PredictionServed,
        ListingChecked,
        ReplayAdvanced,
    )
}


def decode_payload(event_type: str, payload: dict[str, Any]) -> EventPayload:
    """A stored event's payload as its type's struct (raises ``msgspec.ValidationError``)."""
    return msgspec.convert(payload, PAYLOAD_OF[EventType(event_type)])
