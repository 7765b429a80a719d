"""On-demand prediction with a stored model, in the API process, off the event loop.

The model version is the latest one trained under ``model_name`` or the symbol's champion. Its
artifact (safetensors weights + JSON metadata, read from the database) becomes a
:class:`forecasting.predictor.LSTMPredictor` - plain torch, no Lightning - kept in a small LRU
cache by version id, so a repeated prediction costs the price lookup and one forward pass.
Loading and inference run in worker threads; torch is imported on the first prediction only.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import PredictionServed
from db.models import ModelVersion
from db.repositories import (
    EventRepository,
    ModelVersionNotFoundError,
    ModelVersionRepository,
    SymbolRepository,
)
from forecasting.artifacts import ModelArtifact
from web.errors import InvalidRequestError, NoChampionError
from web.prometheus import ApiMetrics
from web.schemas.forecasts import ForecastModel, model_skill, step_out
from web.schemas.ondemand import Prediction, PredictRequest
from web.services.listings import exchange_of_unwatched, listing_fields, listings_for
from web.services.prices import PriceRefresher

if TYPE_CHECKING:
    from forecasting.predictor import LSTMPredictor


class ModelCache:
    """Loaded predictors by model version id, least recently used evicted first.

    Versions are immutable (a retrain makes a new one), so an entry never goes stale. Concurrent
    requests for a version that is not loaded yet wait for one load instead of each doing it.
    """

    def __init__(self, capacity: int, *, threads: int = 1) -> None:
        self._capacity = capacity
        self._threads = threads
        self._entries: OrderedDict[int, LSTMPredictor] = OrderedDict()
        self._locks: dict[int, asyncio.Lock] = {}

    def __contains__(self, version_id: int) -> bool:
        return version_id in self._entries

    async def get(
        self, version_id: int, load: Callable[[], Awaitable[ModelArtifact]]
    ) -> tuple[LSTMPredictor, bool]:
        """The predictor of ``version_id`` and whether it was already loaded."""
        predictor = self._hit(version_id)
        if predictor is not None:
            return predictor, True
        lock = self._locks.setdefault(version_id, asyncio.Lock())
        async with lock:
            predictor = self._hit(version_id)
            if predictor is not None:
                return predictor, True
            artifact = await load()
            predictor = await anyio.to_thread.run_sync(_build_predictor, artifact, self._threads)
            self._entries[version_id] = predictor
            while len(self._entries) > self._capacity:
                evicted, _ = self._entries.popitem(last=False)
                self._locks.pop(evicted, None)
            return predictor, False

    def _hit(self, version_id: int) -> LSTMPredictor | None:
        predictor = self._entries.get(version_id)
        if predictor is not None:
            self._entries.move_to_end(version_id)
        return predictor


def _build_predictor(artifact: ModelArtifact, threads: int) -> LSTMPredictor:
    from forecasting.predictor import LSTMPredictor

    # The predictor sets its thread count in whichever worker thread runs it (OpenMP keeps the
    # count per thread; see WebConfig.inference_threads).
    return LSTMPredictor.from_artifact(artifact, threads=threads)


class PredictionService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        models: ModelCache,
        prices: PriceRefresher,
        metrics: ApiMetrics,
    ) -> None:
        self._sessions = sessions
        self._models = models
        self._prices = prices
        self._metrics = metrics

    async def predict(self, data: PredictRequest) -> Prediction:
        started = time.perf_counter()
        symbol = data.symbol
        version, exchange = await self._resolve(symbol, data.model_name)
        predictor, cached = await self._models.get(version.id, lambda: self._artifact(version.id))
        lookback = predictor.model_config.lookback
        if data.lookback_days is not None and data.lookback_days < lookback:
            raise InvalidRequestError(
                "lookback_days",
                f"model version {version.id} reads {lookback} trading days; ask for at least "
                f"{lookback} (or leave lookback_days out)",
            )
        if data.horizon is not None and data.horizon > predictor.horizon:
            raise InvalidRequestError(
                "horizon",
                f"model version {version.id} forecasts {predictor.horizon} steps ahead; ask for "
                f"at most {predictor.horizon}",
            )
        bars, freshness = await self._prices.load(
            symbol, need_rows=predictor.min_rows, exchange=exchange
        )
        inference_started = time.perf_counter()
        forecast = await anyio.to_thread.run_sync(
            lambda: predictor.predict(bars, exchange=exchange)
        )
        inference_s = time.perf_counter() - inference_started
        steps = forecast.steps[: data.horizon or predictor.horizon]
        listing = (await listings_for([(symbol, exchange)])).get(symbol)
        latency_s = time.perf_counter() - started
        self._metrics.inference_seconds.labels(forecast.model_kind).observe(inference_s)
        self._metrics.prediction_seconds.labels("true" if cached else "false").observe(latency_s)
        await self._record(symbol, version.id, latency_s, inference_s, cached)
        return Prediction(
            symbol=symbol,
            issued_at=datetime.now(UTC),
            last_observed_date=forecast.last_observed_date,
            last_close=forecast.last_close,
            horizon=len(steps),
            model=ForecastModel(
                kind=version.kind,
                version_id=version.id,
                model_name=version.model_name,
                status=str(version.status),
                skill=model_skill(version.kind, version.metrics),
            ),
            steps=[step_out(step) for step in steps],
            prices=freshness,
            model_cached=cached,
            inference_ms=round(inference_s * 1000, 3),
            latency_ms=round(latency_s * 1000, 3),
            **listing_fields(listing),
        )

    async def _resolve(self, symbol: str, model_name: str | None) -> tuple[ModelVersion, str]:
        async with self._sessions() as session:
            versions = ModelVersionRepository(session)
            if model_name is not None:
                version = await versions.latest_named(symbol, model_name)
                if version is None:
                    raise ModelVersionNotFoundError(f"named {model_name!r} for {symbol}")
            else:
                version = await versions.champion(symbol)
                if version is None:
                    raise NoChampionError(symbol)
            watched = await SymbolRepository(session).find(symbol)
        if watched is not None:
            return version, watched.exchange
        return version, exchange_of_unwatched(symbol)

    async def _artifact(self, version_id: int) -> ModelArtifact:
        async with self._sessions() as session:
            row = await ModelVersionRepository(session).artifact(version_id)
            weights, metadata = bytes(row.weights), dict(row.metadata_json)
        # Validates the metadata (InvalidArtifactError -> 409) before torch ever sees it.
        return ModelArtifact(weights=weights, metadata=metadata)

    async def _record(
        self, symbol: str, version_id: int, latency_s: float, inference_s: float, cached: bool
    ) -> None:
        async with self._sessions() as session, session.begin():
            await EventRepository(session).append(
                PredictionServed(
                    model_version_id=version_id,
                    latency_ms=round(latency_s * 1000, 3),
                    inference_ms=round(inference_s * 1000, 3),
                    model_cached=cached,
                ),
                symbol=symbol,
            )
