"""``GET /metrics``: the process's Prometheus metrics, plus figures read from the database now."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from web.dependencies import provide_scrape, provider
from web.schemas.problems import problem_responses
from web.services.scrape import ScrapeService

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class MetricsController(Controller):
    tags = ["operations"]  # noqa: RUF012 - Litestar reads these class attributes
    dependencies = {"scrape": provider(provide_scrape)}  # noqa: RUF012

    @get(
        "/metrics",
        summary="Prometheus metrics",
        description=(
            "Request counts and latency histograms per route template, on-demand inference and "
            "prediction latency, latest-forecast cache hits, SSE clients; and, read from the "
            "database at scrape time, the age of each symbol's latest forecast and the number "
            "of jobs by status."
        ),
        media_type=PROMETHEUS_TEXT,
        responses={
            200: ResponseSpec(
                data_container=str,
                media_type=PROMETHEUS_TEXT,
                description="Prometheus text exposition format",
                generate_examples=False,
            ),
            **problem_responses(401),
        },
    )
    async def scrape(self, *, scrape: NamedDependency[ScrapeService]) -> Response[bytes]:
        return Response(await scrape.render(), media_type=PROMETHEUS_TEXT)
