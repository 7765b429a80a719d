"""Prometheus metrics of one API process, in a registry of its own (so two apps in one test run,
or one app per test, never share counters).

Request counts and latencies come from an ASGI middleware labelled by route *template*
(``/symbols/{symbol:str}/forecast``), never the raw path, so label cardinality stays bounded.
Figures that live in the database (forecast age per symbol, jobs by status) are read when
Prometheus scrapes, not kept up to date in between.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from db.models import JobStatus

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Long-lived streams: their "latency" is how long a client stayed, which would drown the rest.
_UNTIMED_ROUTES = frozenset({"/events"})


class _LiveFigures:
    """Figures read from live objects at scrape time (cache hits, SSE clients)."""

    def __init__(self, source: Callable[[], dict[str, float]]) -> None:
        self._source = source

    def collect(self) -> Iterator[Any]:
        figures = self._source()
        hits = CounterMetricFamily(
            "stockcast_forecast_cache_hits", "Latest-forecast reads answered from the cache"
        )
        hits.add_metric([], figures.get("cache_hits", 0.0))
        misses = CounterMetricFamily(
            "stockcast_forecast_cache_misses", "Latest-forecast reads that went to the database"
        )
        misses.add_metric([], figures.get("cache_misses", 0.0))
        clients = GaugeMetricFamily("stockcast_sse_clients", "Connected server-sent-event clients")
        clients.add_metric([], figures.get("sse_clients", 0.0))
        position = GaugeMetricFamily(
            "stockcast_events_position", "Id of the last event the API process delivered"
        )
        position.add_metric([], figures.get("events_position", 0.0))
        yield from (hits, misses, clients, position)


#: Quantiles of the forecast age reported over the whole watchlist (nearest rank).
AGE_QUANTILES = (0.0, 0.5, 0.9, 0.99, 1.0)
#: Symbols named in ``stockcast_oldest_forecast_age_seconds``: the label stays bounded.
OLDEST_SHOWN = 10
#: A latest forecast older than this (weekends and a holiday included) counts as stale.
STALE_AFTER = timedelta(days=4)


class ApiMetrics:
    """The metrics of one app; :meth:`render` gives the Prometheus text format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "stockcast_http_requests",
            "HTTP requests by route template, method and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "stockcast_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference_seconds = Histogram(
            "stockcast_inference_seconds",
            "Model inference time of on-demand predictions (model already loaded)",
            ["model_kind"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.prediction_seconds = Histogram(
            "stockcast_prediction_seconds",
            "Whole on-demand prediction: model lookup and load, prices, inference",
            ["model_cached"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Bounded labels: a watchlist of thousands must not make thousands of series per scrape.
        self.forecast_age = Gauge(
            "stockcast_forecast_age_seconds",
            "Age of the symbols' latest forecasts at scrape time: quantiles over the watchlist "
            "(0 = newest, 1 = oldest)",
            ["quantile"],
            registry=self.registry,
        )
        self.forecasts_stale = Gauge(
            "stockcast_forecasts_stale",
            f"Symbols whose latest forecast is older than {STALE_AFTER.days} days",
            registry=self.registry,
        )
        self.oldest_forecasts = Gauge(
            "stockcast_oldest_forecast_age_seconds",
            f"The {OLDEST_SHOWN} symbols with the oldest latest forecast, and its age",
            ["symbol"],
            registry=self.registry,
        )
        self.jobs = Gauge(
            "stockcast_jobs",
            "Jobs recorded in job_runs, by status (read at scrape time)",
            ["status"],
            registry=self.registry,
        )
        self._live_source: Callable[[], dict[str, float]] = dict
        self.registry.register(_LiveFigures(self._live_figures))
        self._request_children: dict[tuple[str, str, str], Any] = {}
        self._duration_children: dict[tuple[str, str], Any] = {}

    def _live_figures(self) -> dict[str, float]:
        return self._live_source()

    def watch(self, source: Callable[[], dict[str, float]]) -> None:
        """Read live figures from ``source`` at each scrape (set once the lifespan opened them)."""
        self._live_source = source

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(*key)
        counter.inc()
        if route in _UNTIMED_ROUTES:
            return
        duration_key = (method, route)
        histogram = self._duration_children.get(duration_key)
        if histogram is None:
            histogram = self._duration_children[duration_key] = self.request_seconds.labels(
                *duration_key
            )
        histogram.observe(seconds)

    def set_database_figures(
        self,
        *,
        now: datetime,
        issued_at: dict[str, datetime],
        jobs_by_status: dict[str, int],
    ) -> None:
        ages = sorted(
            (max(0.0, (now - issued).total_seconds()), symbol)
            for symbol, issued in issued_at.items()
        )
        self.forecast_age.clear()
        self.oldest_forecasts.clear()
        if ages:
            values = [age for age, _ in ages]
            for quantile in AGE_QUANTILES:
                index = round(quantile * (len(values) - 1))
                self.forecast_age.labels(f"{quantile:g}").set(values[index])
            for age, symbol in ages[-OLDEST_SHOWN:]:
                self.oldest_forecasts.labels(symbol).set(age)
        stale = STALE_AFTER.total_seconds()
        self.forecasts_stale.set(sum(1 for age, _ in ages if age > stale))
        for status in JobStatus:
            self.jobs.labels(status.value).set(jobs_by_status.get(status.value, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self) -> DefineMiddleware:
        return DefineMiddleware(MetricsMiddleware, metrics=self)


class MetricsMiddleware:
    """Counts and times every HTTP request that reached a route (Litestar applies app-level
    middleware after routing, so ``path_template`` is known)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        except HTTPException as exc:
            # Raised by inner middleware (the rate limiter's 429); answered further out.
            status = exc.status_code
            raise
        finally:
            self.metrics.observe_request(
                str(scope.get("method", "GET")),
                scope.get("path_template") or "unmatched",
                status,
                time.perf_counter() - started,
            )
