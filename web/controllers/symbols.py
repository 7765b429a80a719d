"""``/symbols``: the watchlist."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from forecasting.symbols import SYMBOL_INPUT_PATTERN, SYMBOL_MAX_LENGTH, normalize_symbol
from web.auth import KEY_REQUIRED, require_api_key
from web.controllers.params import SYMBOL_ITEMS, SYMBOL_NAME
from web.dependencies import provide_watchlist, provider
from web.schemas.problems import READ_ERRORS, WRITE_ERRORS, problem_responses
from web.schemas.symbols import (
    BATCH_LIMIT,
    SymbolBatch,
    SymbolBatchChange,
    SymbolChange,
    SymbolCreate,
    SymbolOut,
    SymbolUpdate,
    symbol_url,
)
from web.services.watchlist import WatchlistService

_CREATE_EXAMPLES = [
    Example(summary="Defaults", value={"symbol": "DIS"}),
    Example(
        summary="With settings",
        value={"symbol": "AAPL", "horizon": 10, "lookback": 90, "retrain_cadence": "daily"},
    ),
    Example(summary="A B3 share (exchange inferred: BVMF, in BRL)", value={"symbol": "PETR4.SA"}),
    Example(summary="An explicit exchange", value={"symbol": "PETR4", "exchange": "BVMF"}),
]


class SymbolsController(Controller):
    path = "/symbols"
    tags = ["watchlist"]  # noqa: RUF012 - Litestar reads these class attributes
    dependencies = {"watchlist": provider(provide_watchlist), **SYMBOL_NAME}  # noqa: RUF012

    @post(
        "/",
        summary="Watch a symbol",
        description=(
            "Adds the symbol to the watchlist (or re-activates a removed one), then enqueues "
            "`sync_schedules` (its ingest and retrain schedules), an `ingest` backfill and the "
            "first `retrain`. Answers 201 with the symbol, a Location and the queued jobs. The "
            "exchange is the one named (validated against exchange-calendars' codes) or the one "
            "the ticker names (`PETR4.SA`: BVMF); a ticker whose exchange cannot be told (an "
            "unknown suffix) is a 422, never New York. An array of up to 1,000 symbols is "
            "watched all or none, with one `sync_schedules` and one `refresh` per exchange: its "
            "batches backfill and forecast the symbols and queue their first trainings."
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
        data: Annotated[SymbolCreate | SymbolBatch, Body(examples=_CREATE_EXAMPLES)],
    ) -> Response[SymbolChange | SymbolBatchChange]:
        if isinstance(data, list):
            return Response(await watchlist.register_many(data), status_code=HTTP_201_CREATED)
        change = await watchlist.register(data)
        return Response(
            change,
            status_code=HTTP_201_CREATED,
            headers={"Location": symbol_url(change.symbol.symbol)},
        )

    @delete(
        "/",
        summary="Stop watching many symbols",
        description=(
            "Every `symbol` named (repeat the parameter, up to 1000) stops being watched, or none "
            "does: an unknown one is a 404 naming all of them. One `sync_schedules` removes their "
            "schedules; their prices, models and forecasts stay."
        ),
        status_code=HTTP_200_OK,
        security=KEY_REQUIRED,
        guards=[require_api_key],
        responses=problem_responses(*WRITE_ERRORS, 404),
    )
    async def remove_symbols(
        self,
        *,
        watchlist: NamedDependency[WatchlistService],
        symbols: Annotated[
            list[str],
            QueryParameter(
                name="symbol",
                description="A symbol to stop watching; repeat for each.",
                min_items=1,
                max_items=BATCH_LIMIT,
                schema_extra=SYMBOL_ITEMS,
            ),
        ],
    ) -> SymbolBatchChange:
        return await watchlist.remove_many([normalize_symbol(symbol) for symbol in symbols])

    @get(
        "/",
        summary="List the watchlist",
        description=(
            "Watched symbols in alphabetical order; `include_removed` adds the others. With "
            '`limit`, one page: the `Link` header (`rel="next"`) gives the next one, which '
            "starts `after` the last symbol shown (a page stays right while symbols are added "
            "or removed)."
        ),
        responses=problem_responses(*READ_ERRORS),
    )
    async def list_symbols(
        self,
        *,
        request: Request[Any, Any, Any],
        watchlist: NamedDependency[WatchlistService],
        include_removed: Annotated[
            bool, QueryParameter(description="Also list symbols no longer watched.", required=False)
        ] = False,
        limit: Annotated[
            int | None,
            QueryParameter(description="Symbols per page (1-1000).", ge=1, le=BATCH_LIMIT),
        ] = None,
        after: Annotated[
            str | None,
            QueryParameter(
                description="The page starts after this symbol.",
                pattern=SYMBOL_INPUT_PATTERN,
                max_length=SYMBOL_MAX_LENGTH,
                required=False,
            ),
        ] = None,
    ) -> Response[list[SymbolOut]]:
        start = normalize_symbol(after) if after is not None else None
        rows = await watchlist.list(include_removed=include_removed, after=start, limit=limit)
        headers = {}
        if limit is not None and len(rows) == limit:
            query = {"limit": limit, "after": rows[-1].symbol}
            if include_removed:
                query["include_removed"] = "true"
            headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
        return Response(rows, headers=headers)

    @get(
        "/{symbol:str}",
        summary="One symbol and its settings",
        description=(
            "A watched symbol; one removed with `DELETE` is a 404 (`GET /symbols?"
            "include_removed=true` lists it, with `active: false`; its forecasts stay readable)."
        ),
        responses=problem_responses(*READ_ERRORS, 404),
    )
    async def get_symbol(
        self, *, watchlist: NamedDependency[WatchlistService], symbol_name: NamedDependency[str]
    ) -> SymbolOut:
        return await watchlist.get(symbol_name)

    @patch(
        "/{symbol:str}",
        summary="Change a symbol's settings",
        description=(
            "Horizon and lookback apply from the next training and forecast; a new retrain "
            "cadence enqueues `sync_schedules`; a new exchange enqueues `sync_schedules` (its "
            "closes) and, when it has prices, a `forecast` dated on its sessions."
        ),
        security=KEY_REQUIRED,
        guards=[require_api_key],
        responses=problem_responses(*WRITE_ERRORS, 404),
    )
    async def update_symbol(
        self,
        *,
        watchlist: NamedDependency[WatchlistService],
        symbol_name: NamedDependency[str],
        data: Annotated[
            SymbolUpdate,
            Body(examples=[Example(summary="Weekly to daily", value={"retrain_cadence": "daily"})]),
        ],
    ) -> SymbolChange:
        return await watchlist.update(symbol_name, data)

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
        self, *, watchlist: NamedDependency[WatchlistService], symbol_name: NamedDependency[str]
    ) -> SymbolChange:
        return await watchlist.remove(symbol_name)
