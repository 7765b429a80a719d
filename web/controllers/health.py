"""Liveness and readiness probes (used by Docker health checks and load balancers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.exc import SQLAlchemyError

from db.engine import check_writable, first_line
from db.revision import current_revision
from web.errors import NOT_READY
from web.schemas.problems import PROBLEM_MEDIA_TYPE
from web.state import app_resources


@dataclass(frozen=True, kw_only=True)
class HealthStatus:
    status: str


@dataclass(frozen=True, kw_only=True)
class ReadyStatus:
    status: str
    revision: str | None
    expected_revision: str
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class NotReady:
    """RFC 9457 problem details of a 503 from ``/ready``; ``detail`` says why (``reason`` repeats
    it for probes written against the earlier status body), with the revisions compared."""

    status: int
    type: str
    title: str
    detail: str
    reason: str
    revision: str | None
    expected_revision: str


class HealthController(Controller):
    tags = ["health"]  # noqa: RUF012 - Litestar reads this class attribute

    @get("/health", summary="The process is alive", cache=False)
    async def health(self) -> HealthStatus:
        """Answers as long as the process runs; touches nothing else."""
        return HealthStatus(status="ok")

    @get(
        "/ready",
        summary="The database is reachable and at the migration head",
        responses={
            503: ResponseSpec(
                data_container=NotReady,
                media_type=PROBLEM_MEDIA_TYPE,
                description=(
                    "Not ready (the database is unreachable, cannot be written, or is not at the "
                    "migration head): problem details whose `detail` says why, with `Retry-After`."
                ),
                generate_examples=False,
            )
        },
        cache=False,
    )
    async def ready(self, request: Request[Any, Any, Any]) -> Response[ReadyStatus | NotReady]:
        state = app_resources(request.app.state)
        expected = state.config.expected_revision
        try:
            revision = await current_revision(state.engine)
        except (SQLAlchemyError, OSError) as exc:
            reason = f"database unreachable: {first_line(exc)}"
            return _unavailable(None, expected, reason)
        try:
            await check_writable(state.engine)
        except (SQLAlchemyError, OSError) as exc:
            # Reads still work (cached forecasts are served), but writes would get 503s.
            return _unavailable(revision, expected, f"database not writable: {first_line(exc)}")
        if revision is None:
            return _unavailable(None, expected, "database is not migrated")
        if revision != expected:
            return _unavailable(revision, expected, f"database at {revision}, expected {expected}")
        return Response(
            ReadyStatus(status="ready", revision=revision, expected_revision=expected),
            status_code=HTTP_200_OK,
        )


#: Seconds a load balancer or client is told to wait before asking ``/ready`` again.
READY_RETRY_AFTER_S = 10


def _unavailable(
    revision: str | None, expected: str, reason: str
) -> Response[ReadyStatus | NotReady]:
    return Response(
        NotReady(
            status=HTTP_503_SERVICE_UNAVAILABLE,
            type=NOT_READY.type_uri,
            title=NOT_READY.title,
            detail=reason,
            reason=reason,
            revision=revision,
            expected_revision=expected,
        ),
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={"Retry-After": str(READY_RETRY_AFTER_S)},
    )
