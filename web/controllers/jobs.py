"""``/jobs``: what the scheduler did, is doing, and has queued."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from db.kinds import JobKind
from db.models import JobStatus
from web.controllers.params import SYMBOL_FILTER, Limit, Offset
from web.dependencies import provide_jobs, provider
from web.schemas.jobs import JobOut
from web.schemas.problems import READ_ERRORS, problem_responses
from web.services.jobs import JobService

JobId = Annotated[
    str,
    PathParameter(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9:_.\-]+$",
        description="Job id (APScheduler's UUID).",
    ),
]


class JobsController(Controller):
    path = "/jobs"
    tags = ["jobs"]  # noqa: RUF012 - Litestar reads these class attributes
    dependencies = {"jobs": provider(provide_jobs), **SYMBOL_FILTER}  # noqa: RUF012

    @get(
        "/",
        summary="Recent jobs",
        description="Newest first; filter by symbol, status and kind.",
        responses=problem_responses(*READ_ERRORS),
    )
    async def list_jobs(
        self,
        *,
        jobs: NamedDependency[JobService],
        symbol_filter: NamedDependency[str | None],
        status: Annotated[JobStatus | None, QueryParameter(required=False)] = None,
        kind: Annotated[JobKind | None, QueryParameter(required=False)] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[JobOut]:
        return await jobs.list(
            symbol=symbol_filter,
            status=status,
            kind=kind,
            limit=limit,
            offset=offset,
        )

    @get(
        "/{job_id:str}",
        summary="One job",
        description=(
            "Status (queued, running, succeeded, failed, abandoned, ...), attempts, timings, "
            "the error of a failed job and the result of a finished one."
        ),
        responses=problem_responses(*READ_ERRORS, 404),
    )
    async def get_job(self, *, jobs: NamedDependency[JobService], job_id: JobId) -> JobOut:
        return await jobs.get(job_id)
