"""``/models``: trained model versions, their backtests, and why each was promoted or not."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from db.models import ModelStatus
from forecasting.symbols import normalize_symbol
from web.controllers.params import Limit, Offset
from web.dependencies import provide_models, provider
from web.schemas.fields import SYMBOL_INPUT_PATTERN
from web.schemas.models import ModelDetail, ModelSummary
from web.schemas.problems import READ_ERRORS, problem_responses
from web.services.models import ModelService


class ModelsController(Controller):
    path = "/models"
    tags = ["models"]  # noqa: RUF012 - Litestar reads these class attributes
    dependencies = {"models": provider(provide_models)}  # noqa: RUF012

    @get(
        "/",
        summary="Model versions",
        description="Newest first, with each one's backtest skill; filter by symbol and status.",
        responses=problem_responses(*READ_ERRORS),
    )
    async def list_models(
        self,
        *,
        models: NamedDependency[ModelService],
        symbol: Annotated[
            str | None,
            QueryParameter(pattern=SYMBOL_INPUT_PATTERN, max_length=16, required=False),
        ] = None,
        status: Annotated[ModelStatus | None, QueryParameter(required=False)] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[ModelSummary]:
        return await models.list(
            symbol=normalize_symbol(symbol) if symbol is not None else None,
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
        models: NamedDependency[ModelService],
        model_id: Annotated[
            int, PathParameter(ge=1, le=2**31 - 1, description="Model version id.")
        ],
    ) -> ModelDetail:
        return await models.get(model_id)
