"""The dashboard: two HTML pages (``/`` and ``/ui/symbols/{symbol}``), their static assets, and two
read-only JSON aggregations under ``/ui/data`` that the pages read besides the public API.

The watchlist is shown a page at a time (``q`` searches, ``after``/``before`` page by symbol), in
the HTML and in its JSON alike, so a 1,000-symbol watchlist costs what 50 symbols do.

Everything is registered by :class:`DashboardPlugin`, so ``create_app`` adds the whole dashboard
with one line. The pages are shells that plain ES modules fill in from the API and keep current
from ``/events``; there is no build step and no third-party asset, so it works offline.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, Response, Router, get
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType
from litestar.exceptions import ImproperlyConfiguredException, NotFoundException
from litestar.params import FromPath, PathParameter, QueryParameter
from litestar.plugins import InitPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.status_codes import HTTP_304_NOT_MODIFIED, HTTP_404_NOT_FOUND
from litestar.template.config import TemplateConfig
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.kinds import EventType
from db.repositories.overview import WatchlistWindow
from forecasting.symbols import (
    SYMBOL_INPUT_PATTERN,
    SYMBOL_MAX_LENGTH,
    InvalidSymbolError,
    normalize_symbol,
)
from web.auth import require_api_key
from web.controllers.params import SYMBOL_NAME
from web.dependencies import provide_dashboard, provide_replay, provider
from web.errors import InvalidRequestError, NoForecastError
from web.schemas.dashboard import NextDayOutcomes, RecentCloses, WatchlistOverview, WatchlistPage
from web.schemas.forecasts import LatestForecast
from web.schemas.problems import READ_ERRORS, problem_responses
from web.schemas.replay import ReplayOut
from web.services.dashboard import DashboardService
from web.services.forecasts import ForecastService
from web.services.replay import INACTIVE, ReplayService
from web.state import app_resources

WEB_DIR: Final = Path(__file__).resolve().parent.parent
TEMPLATE_DIR: Final = WEB_DIR / "templates"
STATIC_DIR: Final = WEB_DIR / "static" / "dashboard"
#: Asset URLs carry the bundle's content hash, so they can be cached for good and a new release
#: is fetched at once; relative ``import`` statements inherit the versioned directory.
ASSET_PREFIX: Final = "/static/dashboard"

#: Pages load scripts, styles and data from this origin only: no CDN, nothing inline.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    # The HTML names versioned assets; revalidating it is what picks up a new release.
    "Cache-Control": "no-cache",
}
_IMMUTABLE: Final = "public, max-age=31536000, immutable"
_MEDIA_TYPES: Final = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".txt": "text/plain",
    ".json": "application/json",
}
#: Smaller files gain nothing from gzip once headers are counted.
_GZIP_MIN_BYTES: Final = 1024
#: Trading days the symbol page charts (closes and past next-day forecasts alike).
_CHART_DAYS: Final = 120
#: Symbols of a static source the add form's hint names.
_SUGGESTED: Final = 8
PAGE_TEMPLATES: Final = ("watchlist.html", "symbol.html", "error.html")
#: Watchlist rows per page, and the most a request may ask for.
PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 200
SEARCH_MAX_LENGTH: Final = 32


# --------------------------------------------------------------------------- static assets


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str


@dataclass(frozen=True, slots=True)
class AssetBundle:
    """Every file under ``static/dashboard``, read once when the app is built.

    Requests are answered from this map: a URL names a key, never a path on disk, so no request
    can reach a file that was not part of the bundle.
    """

    version: str
    files: Mapping[str, Asset]

    @classmethod
    def load(cls, directory: Path) -> AssetBundle:
        if not directory.is_dir():
            raise ImproperlyConfiguredException(f"dashboard assets missing: {directory}")
        files: dict[str, Asset] = {}
        digest = hashlib.blake2b(digest_size=6)
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            name = path.relative_to(directory).as_posix()
            body = path.read_bytes()
            digest.update(name.encode() + b"\0" + body + b"\0")
            media_type = _MEDIA_TYPES.get(path.suffix) or (
                mimetypes.guess_type(name)[0] or "application/octet-stream"
            )
            compressible = media_type.startswith(("text/", "image/svg", "application/json"))
            files[name] = Asset(
                body=body,
                gzipped=gzip.compress(body, 9, mtime=0)
                if compressible and len(body) >= _GZIP_MIN_BYTES
                else None,
                media_type=media_type,
                etag='"' + hashlib.blake2b(body, digest_size=10).hexdigest() + '"',
            )
        return cls(version=digest.hexdigest(), files=files)

    @property
    def base_url(self) -> str:
        return f"{ASSET_PREFIX}/{self.version}"


@get(
    f"{ASSET_PREFIX}/{{version:str}}/{{asset_path:path}}",
    include_in_schema=False,
    name="dashboard-asset",
    cache=False,
)
async def dashboard_asset(
    request: Request[Any, Any, Any],
    assets: NamedDependency[AssetBundle],
    version: FromPath[str],
    asset_path: FromPath[PurePath],
) -> Response[bytes]:
    asset = assets.files.get(asset_path.as_posix().lstrip("/"))
    if asset is None:
        raise NotFoundException("no such dashboard asset")
    headers = {
        "ETag": asset.etag,
        # A page from before a release may still ask for the old version: answer with the current
        # file, but do not let it be cached under the old name.
        "Cache-Control": _IMMUTABLE if version == assets.version else "no-cache",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=asset.media_type, headers=headers)


# --------------------------------------------------------------------------- the watchlist's page


def _cursor(description: str) -> Any:
    return QueryParameter(
        pattern=SYMBOL_INPUT_PATTERN,
        max_length=SYMBOL_MAX_LENGTH,
        description=description,
        required=False,
    )


def watchlist_window(
    q: Annotated[
        str | None,
        QueryParameter(
            max_length=SEARCH_MAX_LENGTH,
            description=(
                "Search: symbols containing this text (case-insensitive), or trading on the "
                "exchange with this code (`XLON`)."
            ),
            required=False,
        ),
    ] = None,
    after: Annotated[str | None, _cursor("The page starts after this symbol.")] = None,
    before: Annotated[str | None, _cursor("The page ends before this symbol.")] = None,
    limit: Annotated[
        int,
        QueryParameter(ge=1, le=MAX_PAGE_SIZE, description="Symbols per page.", required=False),
    ] = PAGE_SIZE,
) -> WatchlistWindow:
    """The page of the watchlist a request asks for, its symbols normalised (``q`` upper-cased,
    blank meaning no search)."""
    if after is not None and before is not None:
        raise InvalidRequestError("before", "a page starts after a symbol or ends before one")
    search = q.strip().upper() if q is not None else ""
    return WatchlistWindow(
        search=search or None,
        after=normalize_symbol(after) if after is not None else None,
        before=normalize_symbol(before) if before is not None else None,
        limit=limit,
    )


def page_links(page: WatchlistPage) -> dict[str, str | None]:
    """The watchlist page's own links to the first, previous and next pages (``None`` where
    there is none), keeping the search and a non-default page size: they work without scripts,
    and the script builds the same from the JSON's cursors."""
    kept: dict[str, str | int] = {}
    if page.search:
        kept["q"] = page.search
    if page.limit != PAGE_SIZE:
        kept["limit"] = page.limit

    def link(**cursor: str) -> str:
        query = urlencode({**kept, **cursor})
        return f"/?{query}" if query else "/"

    return {
        "first": link() if page.first > 1 else None,
        "previous": link(before=page.previous_before) if page.previous_before else None,
        "next": link(after=page.next_after) if page.next_after else None,
    }


# --------------------------------------------------------------------------- pages


#: The pages subscribe to every type by name (the stream sends ``event: <type>``).
_EVENT_TYPES: Final = " ".join(event_type.value for event_type in EventType)


def _page(
    template: str, assets: AssetBundle, *, status_code: int = 200, **context: Any
) -> Template:
    return Template(
        template_name=template,
        context={"assets": assets.base_url, "event_types": _EVENT_TYPES, **context},
        headers=_PAGE_HEADERS,
        media_type=MediaType.HTML,
        status_code=status_code,
    )


class DashboardPagesController(Controller):
    """The HTML shells. They hold no data, so they need no key even when reads do."""

    include_in_schema = False
    dependencies = {  # noqa: RUF012
        "replay": provider(provide_replay),
        "window": Provide(watchlist_window, sync_to_thread=False),
    }

    @get("/", name="dashboard-watchlist", cache=False)
    async def watchlist_page(
        self,
        state: State,
        assets: NamedDependency[AssetBundle],
        replay: NamedDependency[ReplayService],
        window: NamedDependency[WatchlistWindow],
    ) -> Template:
        resources = app_resources(state)
        known = await resources.symbol_check.known_symbols()
        overview = await _first_content(
            resources.sessions, window, resources.config.require_key_for_reads
        )
        return _page(
            "watchlist.html",
            assets,
            page="watchlist",
            title=f"Watchlist: {window.search}" if window.search else "Watchlist",
            replay=await _replay_state(replay),
            search=window.search or "",
            overview=overview,
            links=page_links(overview.page) if overview is not None else None,
            suggestions=known[:_SUGGESTED] if known else None,
            more_symbols=max(0, len(known) - _SUGGESTED) if known else 0,
        )

    @get("/ui/symbols/{symbol:str}", name="dashboard-symbol", cache=False)
    async def symbol_page(
        self,
        state: State,
        assets: NamedDependency[AssetBundle],
        replay: NamedDependency[ReplayService],
        # Not SymbolPath: a bad symbol gets an HTML page saying so, not a JSON 422.
        symbol: Annotated[str, PathParameter(max_length=200)],
    ) -> Template:
        try:
            name = normalize_symbol(symbol)
        except InvalidSymbolError as exc:
            return _page(
                "error.html",
                assets,
                status_code=HTTP_404_NOT_FOUND,
                page="error",
                title="Not a symbol",
                message=str(exc),
            )
        resources = app_resources(state)
        return _page(
            "symbol.html",
            assets,
            page="symbol",
            title=name,
            symbol=name,
            replay=await _replay_state(replay),
            forecast=await _first_forecast(
                resources.forecasts, name, resources.config.require_key_for_reads
            ),
        )


async def _first_content(
    sessions: async_sessionmaker[AsyncSession], window: WatchlistWindow, key_needed: bool
) -> WatchlistOverview | None:
    """The watchlist's page rendered into the page itself, so it is useful before its scripts run
    (and without them). Not when reads need a key: the page itself needs none, so it stays a
    shell then, and the script fetches the rows with the key. ``None`` when the database is
    down."""
    if key_needed:
        return None
    try:
        return await DashboardService(sessions).watchlist(window)
    except SQLAlchemyError:
        return None


async def _first_forecast(
    forecasts: ForecastService, symbol: str, key_needed: bool
) -> LatestForecast | None:
    """The symbol's latest forecast rendered into its page (summary, forecast table, what is
    served), so the page shows data before and without its scripts. Not when reads need a key;
    ``None`` when there is none yet or the database is down (the script then says why)."""
    if key_needed:
        return None
    try:
        return await forecasts.latest(symbol)
    except (NoForecastError, SQLAlchemyError):
        return None


async def _replay_state(replay: ReplayService) -> ReplayOut:
    """The replay's date for the page header; a page still renders when the database is down."""
    try:
        return await replay.state()
    except SQLAlchemyError:
        return INACTIVE


# --------------------------------------------------------------------------- data


class DashboardDataController(Controller):
    """What the pages need that the resource routes do not offer in one request."""

    path = "/ui/data"
    tags = ["dashboard"]  # noqa: RUF012 - Litestar reads these class attributes
    guards = [require_api_key]  # noqa: RUF012
    dependencies = {  # noqa: RUF012
        "dashboard": provider(provide_dashboard),
        "window": Provide(watchlist_window, sync_to_thread=False),
        **SYMBOL_NAME,
    }

    @get(
        "/watchlist",
        summary="The watchlist at a glance, a page at a time",
        description=(
            "Watched symbols in alphabetical order, `limit` at a time (`q` searches them), each "
            "with its last stored close, the next step of its latest forecast (point, 80%/95% "
            "interval) and when it was issued, its champion model with its backtest skill "
            "against the naive forecast (null while the naive baseline serves it) and its most "
            "recent job. `page` says how many match and where this page starts, and gives the "
            "`after`/`before` cursors of the next and previous pages. A fixed number of queries "
            "however long the watchlist is."
        ),
        responses=problem_responses(*READ_ERRORS),
        cache=False,
    )
    async def watchlist(
        self,
        dashboard: NamedDependency[DashboardService],
        window: NamedDependency[WatchlistWindow],
    ) -> WatchlistOverview:
        return await dashboard.watchlist(window)

    @get(
        "/symbols/{symbol:str}/closes",
        summary="Recent daily closes of a symbol",
        description=(
            "The last `count` stored daily closes, oldest first: the actuals the dashboard's "
            "chart draws the forecast against. Symbols removed from the watchlist keep theirs."
        ),
        responses=problem_responses(*READ_ERRORS, 404),
        cache=False,
    )
    async def closes(
        self,
        dashboard: NamedDependency[DashboardService],
        symbol_name: NamedDependency[str],
        count: Annotated[
            int,
            QueryParameter(
                ge=5, le=2000, description="How many closes (trading days).", required=False
            ),
        ] = _CHART_DAYS,
    ) -> RecentCloses:
        return await dashboard.closes(symbol_name, count=count)

    @get(
        "/symbols/{symbol:str}/next-day-outcomes",
        summary="Recent next-day forecasts and what followed",
        description=(
            "The last `count` next-day (step 1) forecasts of the symbol whose actual close is "
            "known, oldest first, each with its error and the naive forecast's error and whether "
            "the actual fell inside the 80% interval: the realised accuracy the chart draws. "
            "The full history, every step, is `GET /symbols/{symbol}/forecasts`."
        ),
        responses=problem_responses(*READ_ERRORS, 404),
        cache=False,
    )
    async def next_day_outcomes(
        self,
        dashboard: NamedDependency[DashboardService],
        symbol_name: NamedDependency[str],
        count: Annotated[
            int,
            QueryParameter(ge=1, le=2000, description="How many forecasts.", required=False),
        ] = _CHART_DAYS,
    ) -> NextDayOutcomes:
        return await dashboard.next_day_outcomes(symbol_name, count=count)


# --------------------------------------------------------------------------- registration


class DashboardPlugin(InitPlugin):
    """Adds the pages, the data routes, the assets and the Jinja templates to the app.

    The assets are read here, when the app is built (never at import), so a missing or broken
    bundle fails at start-up rather than on the first visit.
    """

    def __init__(self, *, static_dir: Path = STATIC_DIR, template_dir: Path = TEMPLATE_DIR) -> None:
        self._static_dir = static_dir
        self._template_dir = template_dir

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if app_config.template_config is not None:
            raise ImproperlyConfiguredException(
                "the dashboard brings its own template configuration; another one is set"
            )
        bundle = AssetBundle.load(self._static_dir)
        templates = TemplateConfig(directory=self._template_dir, engine=JinjaTemplateEngine)
        # Compiled now: a broken template fails the start-up, and the first visitor does not
        # wait for the compilation.
        for name in PAGE_TEMPLATES:
            templates.engine_instance.get_template(name)
        app_config.template_config = templates
        app_config.route_handlers.append(
            Router(
                path="/",
                route_handlers=[DashboardPagesController, DashboardDataController, dashboard_asset],
                dependencies={"assets": Provide(lambda: bundle, sync_to_thread=False)},
            )
        )
        return app_config
