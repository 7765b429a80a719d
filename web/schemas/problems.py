"""The RFC 9457 problem document and the OpenAPI response specs every route declares with it."""

from __future__ import annotations

from typing import Final

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"


class FieldError(msgspec.Struct, frozen=True, kw_only=True):
    """One reason a request failed validation."""

    message: str
    key: str | None = None
    source: str | None = None


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """RFC 9457 problem details; ``type`` is a stable URN clients can switch on."""

    status: int
    type: str
    title: str
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


_DESCRIPTIONS: Final = {
    400: "Malformed request (the body is not JSON).",
    401: "Missing or invalid `X-API-Key` (writes always need one; reads when configured).",
    404: "The symbol, forecast, model or job does not exist.",
    409: "The request conflicts with the current state (already watched, no champion yet, ...).",
    422: "The request failed validation; `errors` lists each field. Nothing was changed.",
    429: "Rate limit of the on-demand endpoints reached; see the `RateLimit-*` headers.",
    503: "The database, the job queue or the price source is unavailable; retry later.",
}

_EXAMPLES: Final = {
    401: {
        "status": 401,
        "type": "urn:stockcast:problem:unauthorized",
        "title": "API key required",
        "detail": "this endpoint needs an API key in the X-API-Key header",
    },
    404: {
        "status": 404,
        "type": "urn:stockcast:problem:unknown-symbol",
        "title": "Unknown symbol",
        "detail": "symbol 'XYZ' is not on the watchlist",
    },
    409: {
        "status": 409,
        "type": "urn:stockcast:problem:already-watched",
        "title": "Symbol already watched",
        "detail": "symbol 'DIS' is already on the watchlist",
    },
    422: {
        "status": 422,
        "type": "urn:stockcast:problem:validation",
        "title": "Invalid request",
        "detail": "epochs: Expected `int` >= 1",
        "errors": [{"message": "Expected `int` >= 1", "key": "epochs", "source": "body"}],
    },
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses a route can answer with."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS.get(status, "Error"),
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
            examples=[Example(summary=f"HTTP {status}", value=_EXAMPLES[status])]
            if status in _EXAMPLES
            else None,
        )
        for status in statuses
    }


#: What every read may answer besides success (401 only when reads need a key).
READ_ERRORS: Final = (400, 401, 422, 503)
#: And every route that needs an API key.
WRITE_ERRORS: Final = (400, 401, 422, 503)
