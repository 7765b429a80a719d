"""``GET /metrics``: the process's Prometheus metrics, plus figures read from the database now."""

from __future__ import annotations

import logging

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy.exc import SQLAlchemyError

from db.base import utcnow
from db.repositories import ForecastRepository, JobRepository
from web.dependencies import provide_resources, provider
from web.schemas.problems import problem_responses
from web.state import AppResources

logger = logging.getLogger(__name__)

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class MetricsController(Controller):
    tags = ["operations"]  # noqa: RUF012 - Litestar reads these class attributes
    dependencies = {"resources": provider(provide_resources)}  # noqa: RUF012

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
    async def scrape(self, *, resources: NamedDependency[AppResources]) -> Response[bytes]:
        try:
            async with resources.sessions() as session:
                issued_at = await ForecastRepository(session).latest_issued_at()
                jobs = await JobRepository(session).count_by_status()
        except SQLAlchemyError as exc:
            # A scrape still reports the process's own figures when the database is down.
            logger.warning("metrics: cannot read the database: %s", exc)
        else:
            resources.metrics.set_database_figures(
                now=utcnow(), issued_at=issued_at, jobs_by_status=jobs
            )
        return Response(resources.metrics.render(), media_type=PROMETHEUS_TEXT)
