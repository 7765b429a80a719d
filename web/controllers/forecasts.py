"""``/symbols/{symbol}/forecast(s)`` and ``/accuracy``: what was forecast and how it turned out.

The latest forecast is the hot path: the handler answers from the in-process cache of encoded
responses (see :mod:`web.cache`) with an ETag, and a ``304`` when the client already has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.enums import ParamType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Schema,
)
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED
from litestar.types import Receive, Scope, Send

from forecasting.symbols import normalize_symbol
from web.controllers.params import SYMBOL_NAME, SymbolPath
from web.dependencies import forecast_service, provide_accuracy, provider
from web.errors import InvalidRequestError
from web.schemas.forecasts import AccuracyReport, ForecastHistory, LatestForecast
from web.schemas.problems import READ_ERRORS, problem_responses
from web.services.accuracy import AccuracyService, Grouping
from web.services.forecasts import ForecastService

FromDate = Annotated[
    date | None,
    QueryParameter(name="from", description="First target date (inclusive).", required=False),
]
ToDate = Annotated[
    date | None,
    QueryParameter(name="to", description="Last target date (inclusive).", required=False),
]


def _check_range(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and start > end:
        raise InvalidRequestError(
            "from", f"{start.isoformat()} is after to={end.isoformat()}; swap them"
        )


_IF_NONE_MATCH_DESCRIPTION = "ETag of a copy the client holds."
_VALIDATOR_HEADERS = {
    "ETag": "Validator of this forecast; send it back in `If-None-Match`.",
    "Cache-Control": "How long the forecast may be reused before revalidating.",
}


_IF_NONE_MATCH = b"if-none-match"


def _if_none_match(scope: Scope) -> str | None:
    """The request's first ``If-None-Match``, read from the raw ASGI headers.

    Not a Litestar header parameter: that builds a ``Headers`` multidict of every request header
    and validates the value through the signature model, on the hot path, to read one header
    (the value is decoded as Litestar decodes headers, latin-1).
    """
    for name, value in scope["headers"]:
        if name.lower() == _IF_NONE_MATCH:
            return value.decode("latin-1")
    return None


@dataclass
class _CachedReadOperation(Operation):
    """The latest-forecast operation, with its ``ETag`` and ``Cache-Control`` headers documented
    on the 200 and 304 answers (their specs are given explicitly, so Litestar adds no headers),
    and its ``If-None-Match`` parameter, which the handler reads from the raw headers."""

    def __post_init__(self) -> None:
        self.parameters = [
            *(self.parameters or ()),
            Parameter(
                name="If-None-Match",
                param_in=ParamType.HEADER,
                schema=Schema(
                    one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NULL)],
                    description=_IF_NONE_MATCH_DESCRIPTION,
                ),
                description=_IF_NONE_MATCH_DESCRIPTION,
                required=False,
                deprecated=False,
            ),
        ]
        for status in ("200", "304"):
            response = (self.responses or {}).get(status)
            if isinstance(response, OpenAPIResponse):
                response.headers = {
                    name: OpenAPIHeader(
                        schema=Schema(type=OpenAPIType.STRING), description=description
                    )
                    for name, description in _VALIDATOR_HEADERS.items()
                }


class CachedAnswer:
    """A response that is already encoded, sent as it is (Litestar passes ASGI apps through)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: tuple[tuple[bytes, bytes], ...], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


class ForecastsController(Controller):
    path = "/symbols/{symbol:str}"
    tags = ["forecasts"]  # noqa: RUF012 - Litestar reads these class attributes
    dependencies = {  # noqa: RUF012
        "forecasts": provider(forecast_service),
        "accuracy": provider(provide_accuracy),
        **SYMBOL_NAME,
    }

    @get(
        "/forecast",
        summary="The latest forecast",
        description=(
            "The most recent forecast the scheduler issued for the symbol: every horizon step "
            "with its target trading day, point forecast, 80% and 95% intervals and the naive "
            "forecast; the model that made it and its walk-forward backtest skill against the "
            "naive forecast (or `naive baseline` when no model has been promoted yet); the last "
            "observed close and date; when it was issued. Served from memory; send the `ETag` "
            "back in `If-None-Match` to get a 304 while it has not changed."
        ),
        responses={
            200: ResponseSpec(
                data_container=LatestForecast,
                description="The latest forecast",
                generate_examples=False,
            ),
            304: ResponseSpec(
                data_container=None,
                description="Not modified: the `If-None-Match` ETag is current.",
            ),
            **problem_responses(*READ_ERRORS, 404),
        },
        operation_class=_CachedReadOperation,
    )
    async def latest(self, *, request: Request[Any, Any, Any], symbol: SymbolPath) -> CachedAnswer:
        # The hot path, kept lean on purpose: the service comes straight from the app state and
        # the symbol is normalised here (no dependency resolution); ``request`` rather than
        # ``state``, because Litestar builds a new ``State`` for a ``state`` argument on every
        # call, and ``If-None-Match`` comes from the raw headers (see ``_if_none_match``). The
        # body and headers were encoded when the forecast was cached: answering is two ASGI
        # messages.
        entry = await forecast_service(request.app.state).latest_response(normalize_symbol(symbol))
        if entry.matches(_if_none_match(request.scope)):
            return CachedAnswer(HTTP_304_NOT_MODIFIED, entry.not_modified_headers, b"")
        return CachedAnswer(HTTP_200_OK, entry.ok_headers, entry.body)

    @get(
        "/forecasts",
        summary="Forecast history with actuals",
        description=(
            "Every stored forecast step whose target date lies in [from, to], oldest first, "
            "with the actual close, the error (actual - point), the naive error and whether the "
            "actual fell inside each interval, once the evaluate job has filled them in."
        ),
        responses=problem_responses(*READ_ERRORS, 404),
    )
    async def history(
        self,
        *,
        forecasts: NamedDependency[ForecastService],
        symbol_name: NamedDependency[str],
        start: FromDate = None,
        end: ToDate = None,
        limit: Annotated[
            int,
            QueryParameter(ge=1, le=5000, description="At most this many steps.", required=False),
        ] = 1000,
    ) -> ForecastHistory:
        _check_range(start, end)
        return await forecasts.history(symbol_name, start=start, end=end, limit=limit)

    @get(
        "/accuracy",
        summary="Realised accuracy vs the naive forecast",
        description=(
            "How the served forecasts turned out, per model kind: overall, over the `recent_days` "
            "before the latest evaluated target, and per month or ISO week. `relative_mae` = MAE "
            "/ MAE of the naive forecast on the same targets (below 1 beats naive); `theil_u2` = "
            "RMSE / naive RMSE; interval coverage and directional accuracy alongside, with counts."
        ),
        responses=problem_responses(*READ_ERRORS, 404),
    )
    async def accuracy(
        self,
        *,
        accuracy: NamedDependency[AccuracyService],
        symbol_name: NamedDependency[str],
        start: FromDate = None,
        end: ToDate = None,
        group: Annotated[
            Grouping, QueryParameter(description="Period of the `periods` groups.", required=False)
        ] = Grouping.MONTH,
        recent_days: Annotated[
            int,
            QueryParameter(
                ge=1, le=3660, description="Length of the `recent` window.", required=False
            ),
        ] = 30,
    ) -> AccuracyReport:
        _check_range(start, end)
        return await accuracy.report(
            symbol_name,
            start=start,
            end=end,
            grouping=group,
            recent_days=recent_days,
        )
