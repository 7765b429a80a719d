"""The API's failures and the one place that turns every failure into RFC 9457 problem details.

Services and repositories raise narrow domain errors (``SymbolNotFoundError``, ``NoChampionError``,
...) that know nothing of HTTP; :func:`problem_details_plugin` maps each class to a status, a
stable ``type`` URI and a title. Handlers never build error responses themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from typing import Any, Final

from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsException
from litestar.plugins.problem_details import ProblemDetailsPlugin as _ProblemDetailsPlugin
from sqlalchemy.exc import OperationalError

from db.apscheduler_workarounds import TaskNotConfiguredError
from db.enqueue import JobQueueUnavailableError
from db.repositories import (
    JobNotFoundError,
    ModelVersionNotFoundError,
    SymbolAlreadyWatchedError,
    SymbolNotFoundError,
)
from forecasting.artifacts import InvalidArtifactError
from forecasting.symbols import InvalidSymbolError

logger = logging.getLogger(__name__)

#: Problem ``type`` URIs are URNs: stable identifiers clients can switch on, not pages to fetch.
PROBLEM_TYPE_PREFIX: Final = "urn:stockcast:problem:"


# --------------------------------------------------------------------------- domain errors


class NoForecastError(LookupError):
    """Nothing has been forecast for the symbol yet (or the symbol was never seen)."""

    def __init__(self, symbol: str, *, known: bool) -> None:
        if known:
            message = (
                f"no forecast has been issued for {symbol} yet; the first one follows its "
                "price backfill and first training"
            )
        else:
            message = f"symbol {symbol!r} is not on the watchlist and has no forecasts"
        super().__init__(message)
        self.symbol = symbol
        self.known = known


class NoChampionError(LookupError):
    """The symbol has no champion model to predict with."""

    def __init__(self, symbol: str) -> None:
        super().__init__(
            f"{symbol} has no champion model yet: train one with POST /train, or name a trained "
            "model with model_name"
        )
        self.symbol = symbol


class InvalidRequestError(ValueError):
    """A request whose fields are each valid but that cannot be honoured together, or given the
    stored state (``from`` after ``to``; the model's window longer than ``lookback_days``)."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name}: {problem}")
        self.field_name = field_name
        self.problem = problem


class InsufficientPricesError(LookupError):
    """Too few stored bars for a prediction, and the source had no more."""

    def __init__(self, symbol: str, *, have: int, need: int) -> None:
        super().__init__(
            f"{symbol} has {have} stored daily bars; the model needs {need} for a forecast"
        )
        self.symbol = symbol
        self.have = have
        self.need = need


class PricesUnavailableError(RuntimeError):
    """Too few stored bars and the price source could not be reached to get more."""

    def __init__(self, symbol: str, *, have: int, need: int, reason: str) -> None:
        super().__init__(
            f"{symbol} has {have} stored daily bars, the model needs {need}, and the price source "
            f"failed: {reason}"
        )
        self.symbol = symbol
        self.reason = reason


class JobAlreadyPendingError(RuntimeError):
    """A job of which one at a time is enough (the global retrain) is already queued or running:
    a second would train the same models again, so the request is refused, naming that job."""

    def __init__(self, kind: str, job_id: str, status: str) -> None:
        super().__init__(
            f"a {kind} job is already {status}: {job_id} (/jobs/{job_id}); wait for it to finish"
        )
        self.kind = kind
        self.job_id = job_id
        self.status = status


class MissingApiKeyError(PermissionError):
    """The request needs an ``X-API-Key`` header with a configured key."""

    def __init__(self, *, configured: bool, supplied: bool) -> None:
        if not configured:
            message = (
                "this server has no API keys configured, so it refuses writes: set "
                "STOCKCAST_API_KEYS (comma-separated keys of at least 16 characters) and restart"
            )
        elif supplied:
            message = "the X-API-Key header does not hold a valid API key"
        else:
            message = "this endpoint needs an API key in the X-API-Key header"
        super().__init__(message)
        self.configured = configured
        self.supplied = supplied


# --------------------------------------------------------------------------- mapping


@dataclass(frozen=True, kw_only=True)
class ProblemKind:
    """How one class of failure looks on the wire."""

    status: int
    slug: str
    title: str

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.slug


UNKNOWN_SYMBOL = ProblemKind(status=404, slug="unknown-symbol", title="Unknown symbol")
NO_FORECAST = ProblemKind(status=404, slug="no-forecast", title="No forecast yet")
UNKNOWN_MODEL = ProblemKind(status=404, slug="unknown-model", title="Unknown model version")
UNKNOWN_JOB = ProblemKind(status=404, slug="unknown-job", title="Unknown job")
ALREADY_WATCHED = ProblemKind(status=409, slug="already-watched", title="Symbol already watched")
NO_CHAMPION = ProblemKind(status=409, slug="no-champion", title="No champion model")
UNUSABLE_MODEL = ProblemKind(status=409, slug="unusable-model", title="Model cannot be loaded")
JOB_PENDING = ProblemKind(status=409, slug="job-pending", title="Job already queued or running")
INSUFFICIENT_PRICES = ProblemKind(
    status=409, slug="insufficient-prices", title="Not enough price history"
)
VALIDATION = ProblemKind(status=422, slug="validation", title="Invalid request")
#: A header that is not what its name says at all (RFC 9110's "malformed" request): a 400.
MALFORMED_HEADER = ProblemKind(status=400, slug="malformed-header", title="Malformed header")
UNAUTHORIZED = ProblemKind(status=401, slug="unauthorized", title="API key required")
RATE_LIMITED = ProblemKind(status=429, slug="rate-limited", title="Too many requests")
PRICES_UNAVAILABLE = ProblemKind(
    status=503, slug="prices-unavailable", title="Price source unavailable"
)
QUEUE_UNAVAILABLE = ProblemKind(status=503, slug="queue-unavailable", title="Job queue unavailable")
DATABASE_UNAVAILABLE = ProblemKind(
    status=503, slug="database-unavailable", title="Database unavailable"
)
NOT_READY = ProblemKind(status=503, slug="not-ready", title="Not ready")
INTERNAL = ProblemKind(status=500, slug="internal", title="Internal server error")

#: Domain error -> problem. Looked up along the exception's MRO, most specific class first.
DOMAIN_PROBLEMS: Final[Mapping[type[Exception], ProblemKind]] = {
    SymbolNotFoundError: UNKNOWN_SYMBOL,
    NoForecastError: NO_FORECAST,
    ModelVersionNotFoundError: UNKNOWN_MODEL,
    JobNotFoundError: UNKNOWN_JOB,
    SymbolAlreadyWatchedError: ALREADY_WATCHED,
    NoChampionError: NO_CHAMPION,
    InvalidArtifactError: UNUSABLE_MODEL,
    InsufficientPricesError: INSUFFICIENT_PRICES,
    JobAlreadyPendingError: JOB_PENDING,
    InvalidSymbolError: VALIDATION,
    InvalidRequestError: VALIDATION,
    MissingApiKeyError: UNAUTHORIZED,
    PricesUnavailableError: PRICES_UNAVAILABLE,
    JobQueueUnavailableError: QUEUE_UNAVAILABLE,
    TaskNotConfiguredError: QUEUE_UNAVAILABLE,
    OperationalError: DATABASE_UNAVAILABLE,
}

#: Extra headers some problems carry: how to authenticate, when to come back.
_PROBLEM_HEADERS: Final[Mapping[int, dict[str, str]]] = {
    401: {"WWW-Authenticate": 'ApiKey header="X-API-Key"'},
    503: {"Retry-After": "30"},
}


def _problem(kind: ProblemKind, detail: str, **extra: Any) -> ProblemDetailsException:
    return ProblemDetailsException(
        status_code=kind.status,
        type_=kind.type_uri,
        title=kind.title,
        detail=detail,
        headers=dict(_PROBLEM_HEADERS.get(kind.status, {})) or None,
        extra=extra or None,
    )


def _domain_problem(exc: Exception) -> ProblemDetailsException:
    kind = next(
        (DOMAIN_PROBLEMS[cls] for cls in type(exc).__mro__ if cls in DOMAIN_PROBLEMS), INTERNAL
    )
    if isinstance(exc, OperationalError):
        # The driver's text may hold host names or SQL; the log gets it, the client does not.
        logger.warning("database unavailable: %s", exc)
        return _problem(kind, "the database cannot be reached; try again shortly")
    return _problem(kind, str(exc))


def _validation_problem(exc: ValidationException) -> ProblemDetailsException:
    errors = (
        [_clean_validation_error(error) for error in exc.extra]
        if isinstance(exc.extra, list)
        else []
    )
    detail = _first_validation_message(errors) or str(exc.detail)
    if errors and all(_is_malformed_header(error) for error in errors):
        return _problem(MALFORMED_HEADER, detail, errors=errors)
    return _problem(VALIDATION, detail, errors=errors)


#: Headers whose value has a fixed syntax (an event id): one that breaks it is malformed (400),
#: where a well-formed value out of range or of the wrong kind is a validation error (422).
_SYNTAX_HEADERS: Final = frozenset({"Last-Event-ID"})


def _is_malformed_header(error: Mapping[str, str]) -> bool:
    return error.get("source") == "header" and error.get("key") in _SYNTAX_HEADERS


def _first_validation_message(errors: list[dict[str, str]]) -> str | None:
    for error in errors:
        if error.get("message"):
            key = error.get("key")
            return f"{key}: {error['message']}" if key else error["message"]
    return None


#: Plain words for the fields whose pattern msgspec would otherwise quote as a regex.
_PATTERN_HINTS: Final[Mapping[str, str]] = {
    "symbol": (
        "not a ticker symbol: expected 1-16 characters of A-Z and 0-9, joined by single "
        "'.', '-' or '=' (optionally starting with '^'), such as AAPL, BRK-B or PETR4.SA"
    ),
    "Last-Event-ID": "expected an event id: up to 18 ASCII digits (or nothing)",
    "model_name": (
        "expected 1-64 characters of letters, digits, '_', '.', '-', starting with a letter "
        "or digit"
    ),
}


#: Query parameters whose Python name differs from the name a client writes (``from`` is a
#: keyword); errors name the parameter as the client wrote it. A test keeps this complete.
QUERY_PARAMETER_NAMES: Final[Mapping[str, str]] = {
    "start": "from",
    "end": "to",
    "symbols": "symbol",
}


#: The same for headers: the name on the wire, not the handler's.
HEADER_PARAMETER_NAMES: Final[Mapping[str, str]] = {"last_event_id": "Last-Event-ID"}


def _clean_validation_error(error: Any) -> dict[str, str]:
    if not isinstance(error, Mapping):
        return {"message": str(error)}
    # Litestar says where a parameter was with its ParamType enum: the client wants "query".
    cleaned = {
        name: str(value.value if isinstance(value, Enum) else value)
        for name, value in error.items()
        if value is not None
    }
    if cleaned.get("source") == "query" and "key" in cleaned:
        cleaned["key"] = QUERY_PARAMETER_NAMES.get(cleaned["key"], cleaned["key"])
    if cleaned.get("source") == "header" and "key" in cleaned:
        cleaned["key"] = HEADER_PARAMETER_NAMES.get(cleaned["key"], cleaned["key"])
    hint = _PATTERN_HINTS.get(cleaned.get("key", ""))
    if hint is not None and "matching regex" in cleaned.get("message", ""):
        cleaned["message"] = hint
    return cleaned


def _http_problem(exc: HTTPException) -> ProblemDetailsException:
    status = exc.status_code
    if status == 429:
        kind = RATE_LIMITED
        detail = (
            "rate limit of the on-demand endpoints reached; retry after RateLimit-Reset seconds"
        )
    else:
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        kind = ProblemKind(status=status, slug=phrase.lower().replace(" ", "-"), title=phrase)
        detail = str(exc.detail)
    if status >= 500:
        # Litestar's own server errors say nothing useful to a client and may say too much.
        detail = "the server failed to handle this request"
    problem = _problem(kind, detail)
    if exc.headers:
        problem.headers = {**(problem.headers or {}), **exc.headers}
    return problem


def _unexpected_problem(exc: Exception) -> ProblemDetailsException:
    logger.error("unhandled error while serving a request", exc_info=exc)
    return _problem(INTERNAL, "the server failed to handle this request")


def problem_details_plugin() -> _ProblemDetailsPlugin:
    """Litestar's problem-details plugin, taught every failure the API knows about."""
    mapping: dict[type[Exception], Callable[[Any], ProblemDetailsException]] = dict.fromkeys(
        DOMAIN_PROBLEMS, _domain_problem
    )
    mapping[ValidationException] = _validation_problem
    mapping[HTTPException] = _http_problem
    mapping[Exception] = _unexpected_problem
    return _ProblemDetailsPlugin(ProblemDetailsConfig(exception_to_problem_detail_map=mapping))
