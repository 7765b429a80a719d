"""``/models``: trained model versions, their backtests, and why each was promoted or not."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from db.models import ModelStatus
from web.controllers.params import SYMBOL_FILTER, Limit, Offset
from web.dependencies import provide_model_versions, provider
from web.schemas.model_versions import ModelDetail, ModelSummary
from web.schemas.problems import READ_ERRORS, problem_responses
from web.services.model_versions import ModelVersionService


class ModelsController(Controller):
    path = "/models"
    tags = ["models"]  # noqa: RUF012 - Litestar reads these class attributes
    dependencies = {"models": provider(provide_model_versions), **SYMBOL_FILTER}  # noqa: RUF012

    @get(
        "/",
        summary="Model versions",
        description="Newest first, with each one's backtest skill; filter by symbol and status.",
        responses=problem_responses(*READ_ERRORS),
    )
    async def list_models(
        self,
        *,
        models: NamedDependency[ModelVersionService],
        symbol_filter: NamedDependency[str | None],
        status: Annotated[ModelStatus | None, QueryParameter(required=False)] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[ModelSummary]:
        return await models.list(
            symbol=symbol_filter,
            status=status,
            limit=limit,
            offset=offset,
        )

    @get(
        "/{model_id:int}",
        summary="One model version",
        description=(
            "Backtest metrics of the model and of the naive and drift baselines on the same "
            "windows, the promotion decision (`status`, `status_reason`), training parameters "
            "and data range, and links to its MLflow run and registered version."
        ),
        responses=problem_responses(*READ_ERRORS, 404),
    )
    async def get_model(
        self,
        *,
        models: NamedDependency[ModelVersionService],
        model_id: Annotated[
            int, PathParameter(ge=1, le=2**31 - 1, description="Model version id.")
        ],
    ) -> ModelDetail:
        return await models.get(model_id)
