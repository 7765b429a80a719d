"""``POST /train/global``: queue the global retrain (``retrain_global``) on demand.

Mounted beside ``POST /train`` in the rate-limited router: it starts the most expensive job the
service has. A module of its own, because the on-demand controller keeps the original service's
two endpoints and payloads.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body
from litestar.status_codes import HTTP_202_ACCEPTED

from web.auth import KEY_REQUIRED, require_api_key
from web.dependencies import provide_global_training, provider
from web.openapi import OptionalBodyOperation
from web.schemas.global_training import GlobalTrainAccepted, GlobalTrainRequest
from web.schemas.problems import WRITE_ERRORS, problem_responses
from web.services.global_training import GlobalTrainingService

_EXAMPLES = [
    Example(summary="The whole watchlist, the worker's defaults", value={}),
    Example(
        summary="Warm-started, a few symbols",
        value={"symbols": ["DIS", "KO"], "warm_start_epochs": 3, "policy": "evidence"},
    ),
]


class GlobalTrainingController(Controller):
    tags = ["on-demand"]  # noqa: RUF012 - Litestar reads these class attributes
    dependencies = {"global_training": provider(provide_global_training)}  # noqa: RUF012

    @post(
        "/train/global",
        summary="Train the global model (queued)",
        description=(
            "Enqueues a `retrain_global` job and answers 202 with the job; nothing is trained in "
            "the API process. The job trains one global LSTM on the watched symbols whose "
            "horizon and lookback are the worker's defaults (the others are listed as skipped) "
            "and judges every symbol's challenger with it as one more candidate; a champion "
            "changes only if its challenger passes the promotion gate. The body is optional. "
            "One at a time: while a global retrain is queued or running, a request is a 409 "
            "naming it. Rate-limited."
        ),
        status_code=HTTP_202_ACCEPTED,
        operation_class=OptionalBodyOperation,
        security=KEY_REQUIRED,
        guards=[require_api_key],
        responses=problem_responses(*WRITE_ERRORS, 409, 429),
    )
    async def train_global(
        self,
        global_training: NamedDependency[GlobalTrainingService],
        data: Annotated[GlobalTrainRequest | None, Body(examples=_EXAMPLES)] = None,
    ) -> Response[GlobalTrainAccepted]:
        accepted = await global_training.request(data or GlobalTrainRequest())
        return Response(
            accepted, status_code=HTTP_202_ACCEPTED, headers={"Location": accepted.job.url}
        )
