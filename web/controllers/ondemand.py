"""``POST /train`` and ``POST /predict``: the original service's endpoints, payloads unchanged.

Both are rate-limited: ``create_app`` mounts this controller in a router that carries the rate
limit middleware (the limit comes from the configuration, so it cannot be a class attribute).
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from web.auth import KEY_REQUIRED, require_api_key
from web.dependencies import provide_prediction, provide_training, provider
from web.schemas.ondemand import Prediction, PredictRequest, TrainAccepted, TrainRequest
from web.schemas.problems import WRITE_ERRORS, problem_responses
from web.services.prediction import PredictionService
from web.services.training import TrainingService

_TRAIN_EXAMPLES = [
    Example(
        summary="The original service's payload",
        value={
            "model_name": "disney_v1",
            "symbol": "DIS",
            "start_date": "2018-01-01",
            "end_date": "2025-10-30",
            "epochs": 5,
            "batch_size": 32,
            "prediction_steps": 1,
        },
    ),
    Example(
        summary="With the new options",
        value={
            "symbol": "AAPL",
            "model_name": "aapl_h5",
            "horizon": 5,
            "lookback": 60,
            "folds": 3,
            "policy": "evidence",
        },
    ),
]
_PREDICT_EXAMPLES = [
    Example(
        summary="The original service's payload",
        value={"model_name": "disney_v1", "symbol": "DIS", "lookback_days": 60},
    ),
    Example(summary="With the symbol's champion", value={"symbol": "DIS"}),
]


class OnDemandController(Controller):
    tags = ["on-demand"]  # noqa: RUF012 - Litestar reads these class attributes
    dependencies = {  # noqa: RUF012
        "training": provider(provide_training),
        "prediction": provider(provide_prediction),
    }

    @post(
        "/train",
        summary="Train a model (queued)",
        description=(
            "Enqueues a `retrain` job on the scheduler's workers and answers 202 with the job; "
            "nothing is trained in the API process. The challenger is backtested against the "
            "naive and drift forecasts, logged to MLflow, recorded as a model version under "
            "`model_name`, and promoted to champion only if it passes the promotion gate. A "
            "symbol that is not on the watchlist may be trained; it is not added to the "
            "watchlist (`watched: false`). Rate-limited."
        ),
        status_code=HTTP_202_ACCEPTED,
        security=KEY_REQUIRED,
        guards=[require_api_key],
        responses=problem_responses(*WRITE_ERRORS, 429),
    )
    async def train(
        self,
        training: NamedDependency[TrainingService],
        data: Annotated[TrainRequest, Body(examples=_TRAIN_EXAMPLES)],
    ) -> Response[TrainAccepted]:
        accepted = await training.request(data)
        return Response(
            accepted, status_code=HTTP_202_ACCEPTED, headers={"Location": accepted.job.url}
        )

    @post(
        "/predict",
        summary="Forecast now with a stored model",
        description=(
            "Runs the model named `model_name` (its latest version for the symbol) or the "
            "symbol's champion on the latest stored prices, refreshing them from the price "
            "source first when they are older than the last closed session (bounded by a "
            "timeout; stored prices are used if the source is down). Answers with the forecast, "
            "its latency and the freshness of the prices. Rate-limited."
        ),
        status_code=HTTP_200_OK,
        security=KEY_REQUIRED,
        guards=[require_api_key],
        responses=problem_responses(*WRITE_ERRORS, 404, 409, 429),
    )
    async def predict(
        self,
        prediction: NamedDependency[PredictionService],
        data: Annotated[PredictRequest, Body(examples=_PREDICT_EXAMPLES)],
    ) -> Prediction:
        return await prediction.predict(data)
