"""``/forecasts``: the latest forecasts of many symbols in one read.

A client that shows a whole watchlist would otherwise make one request per symbol. The answer is
built from the same in-process cache of encoded forecasts as ``/symbols/{symbol}/forecast``: each
symbol's cached body is spliced into the list as it is, so a cached read of 1,000 symbols costs
no encoding at all.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from forecasting.symbols import normalize_symbol
from web.controllers.params import SYMBOL_ITEMS
from web.dependencies import forecast_service
from web.errors import InvalidRequestError, NoForecastError
from web.schemas.forecasts import LatestForecast
from web.schemas.problems import READ_ERRORS, problem_responses

#: The most symbols one read names.
MANY_LIMIT = 1000


class LatestForecasts(msgspec.Struct, frozen=True, kw_only=True):
    """The latest forecast of each symbol asked for that has one, in the order asked, and the
    symbols that have none (not watched, or not forecast yet)."""

    forecasts: list[LatestForecast]
    missing: list[str]


class LatestForecastsController(Controller):
    path = "/forecasts"
    tags = ["forecasts"]  # noqa: RUF012 - Litestar reads these class attributes

    @get(
        "/latest",
        summary="The latest forecasts of many symbols",
        description=(
            f"Name up to {MANY_LIMIT} symbols (repeat `symbol`); each one's latest forecast is "
            "given as `/symbols/{symbol}/forecast` gives it, from the same cache. Symbols with "
            "no forecast are listed in `missing` instead of failing the read."
        ),
        responses={
            200: ResponseSpec(
                data_container=LatestForecasts,
                description="The latest forecasts",
                generate_examples=False,
            ),
            **problem_responses(*READ_ERRORS),
        },
    )
    async def latest_many(
        self,
        *,
        state: State,
        symbols: Annotated[
            list[str],
            QueryParameter(
                name="symbol",
                description="A symbol; repeat for each.",
                min_items=1,
                max_items=MANY_LIMIT,
                schema_extra=SYMBOL_ITEMS,
            ),
        ],
    ) -> Response[bytes]:
        names = list(dict.fromkeys(normalize_symbol(symbol) for symbol in symbols))
        if len(names) > MANY_LIMIT:
            raise InvalidRequestError("symbol", f"name at most {MANY_LIMIT} symbols")
        service = forecast_service(state)
        bodies: list[bytes] = []
        missing: list[str] = []
        for name in names:
            try:
                bodies.append((await service.latest_response(name)).body)
            except NoForecastError:
                missing.append(name)
        body = b'{"forecasts":[%s],"missing":%s}' % (
            b",".join(bodies),
            msgspec.json.encode(missing),
        )
        return Response(body, media_type="application/json")
