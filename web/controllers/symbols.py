"""``/symbols``: the watchlist."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from web.auth import KEY_REQUIRED, require_api_key
from web.controllers.params import SymbolPath
from web.dependencies import provide_watchlist, provider
from web.schemas.problems import READ_ERRORS, WRITE_ERRORS, problem_responses
from web.schemas.symbols import SymbolChange, SymbolCreate, SymbolOut, SymbolUpdate, symbol_url
from web.services.watchlist import WatchlistService

_CREATE_EXAMPLES = [
    Example(summary="Defaults", value={"symbol": "DIS"}),
    Example(
        summary="With settings",
        value={"symbol": "AAPL", "horizon": 10, "lookback": 90, "retrain_cadence": "daily"},
    ),
]


class SymbolsController(Controller):
    path = "/symbols"
    tags = ["watchlist"]  # noqa: RUF012 - Litestar reads these class attributes
    dependencies = {"watchlist": provider(provide_watchlist)}  # noqa: RUF012

    @post(
        "/",
        summary="Watch a symbol",
        description=(
            "Adds the symbol to the watchlist (or re-activates a removed one), then enqueues "
            "`sync_schedules` (its ingest and retrain schedules), an `ingest` backfill and the "
            "first `retrain`. Answers 201 with the symbol, a Location and the queued jobs."
        ),
        status_code=HTTP_201_CREATED,
        security=KEY_REQUIRED,
        guards=[require_api_key],
        responses=problem_responses(*WRITE_ERRORS, 409),
    )
    async def register(
        self,
        *,
        watchlist: NamedDependency[WatchlistService],
        data: Annotated[SymbolCreate, Body(examples=_CREATE_EXAMPLES)],
    ) -> Response[SymbolChange]:
        change = await watchlist.register(data)
        return Response(
            change,
            status_code=HTTP_201_CREATED,
            headers={"Location": symbol_url(change.symbol.symbol)},
        )

    @get(
        "/",
        summary="List the watchlist",
        description="Watched symbols in alphabetical order; `include_removed` adds the others.",
        responses=problem_responses(*READ_ERRORS),
    )
    async def list_symbols(
        self,
        *,
        watchlist: NamedDependency[WatchlistService],
        include_removed: Annotated[
            bool, QueryParameter(description="Also list symbols no longer watched.", required=False)
        ] = False,
    ) -> list[SymbolOut]:
        return await watchlist.list(include_removed=include_removed)

    @get(
        "/{symbol:str}",
        summary="One symbol and its settings",
        description="Removed symbols are shown too, with `active: false`.",
        responses=problem_responses(*READ_ERRORS, 404),
    )
    async def get_symbol(
        self, *, watchlist: NamedDependency[WatchlistService], symbol: SymbolPath
    ) -> SymbolOut:
        return await watchlist.get(symbol)

    @patch(
        "/{symbol:str}",
        summary="Change a symbol's settings",
        description=(
            "Horizon and lookback apply from the next training and forecast; a new retrain "
            "cadence enqueues `sync_schedules`."
        ),
        security=KEY_REQUIRED,
        guards=[require_api_key],
        responses=problem_responses(*WRITE_ERRORS, 404),
    )
    async def update_symbol(
        self,
        *,
        watchlist: NamedDependency[WatchlistService],
        symbol: SymbolPath,
        data: Annotated[
            SymbolUpdate,
            Body(examples=[Example(summary="Weekly to daily", value={"retrain_cadence": "daily"})]),
        ],
    ) -> SymbolChange:
        return await watchlist.update(symbol, data)

    @delete(
        "/{symbol:str}",
        summary="Stop watching a symbol",
        description=(
            "Its schedules are removed (`sync_schedules`); its prices, models and forecasts stay "
            "and remain readable. Register it again to resume."
        ),
        status_code=HTTP_200_OK,
        security=KEY_REQUIRED,
        guards=[require_api_key],
        responses=problem_responses(*WRITE_ERRORS, 404),
    )
    async def remove_symbol(
        self, *, watchlist: NamedDependency[WatchlistService], symbol: SymbolPath
    ) -> SymbolChange:
        return await watchlist.remove(symbol)
