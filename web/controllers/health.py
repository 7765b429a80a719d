"""Liveness and readiness probes (used by Docker health checks and load balancers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.exc import SQLAlchemyError

from db.revision import current_revision
from web.state import resources


@dataclass(frozen=True, kw_only=True)
class HealthStatus:
    status: str


@dataclass(frozen=True, kw_only=True)
class ReadyStatus:
    status: str
    revision: str | None
    expected_revision: str
    reason: str | None = None


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
                data_container=ReadyStatus, description="Not ready; `reason` says why"
            )
        },
        cache=False,
    )
    async def ready(self, request: Request[Any, Any, Any]) -> Response[ReadyStatus]:
        state = resources(request.app)
        expected = state.config.expected_revision
        try:
            revision = await current_revision(state.engine)
        except (SQLAlchemyError, OSError) as exc:
            reason = f"database unreachable: {str(exc).strip().splitlines()[0]}"
            return _unavailable(None, expected, reason)
        if revision is None:
            return _unavailable(None, expected, "database is not migrated")
        if revision != expected:
            return _unavailable(revision, expected, f"database at {revision}, expected {expected}")
        return Response(
            ReadyStatus(status="ready", revision=revision, expected_revision=expected),
            status_code=HTTP_200_OK,
        )


def _unavailable(revision: str | None, expected: str, reason: str) -> Response[ReadyStatus]:
    return Response(
        ReadyStatus(
            status="unavailable", revision=revision, expected_revision=expected, reason=reason
        ),
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
    )
