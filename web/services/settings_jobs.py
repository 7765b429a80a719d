"""The jobs that make a changed horizon or lookback true, queued by ``PATCH /symbols/{symbol}``.

A new horizon changes how many steps a forecast has; a new lookback, how many sessions the model
reads. The naive baseline follows the symbol's settings at once, so a forecast is queued. The
champion LSTM was built for its own horizon and lookback (its output layer and its input window),
so it keeps forecasting the old shape until a model of the new shape is trained: a retraining is
queued when the champion's shape differs from the new settings (none when a retraining is already
queued or running: it reads the settings when it starts, and one of them is enough).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.contracts import JobRequest, RetrainParams
from db.kinds import JobKind
from db.repositories import JobRepository, ModelVersionRepository

#: The settings that decide a forecast's and a model's shape.
SHAPE_SETTINGS = ("horizon", "lookback")


async def jobs_for_settings(
    sessions: async_sessionmaker[AsyncSession],
    symbol: str,
    *,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> list[JobRequest]:
    """What to queue after the symbol's settings went from ``before`` to ``after``."""
    if all(before[name] == after[name] for name in SHAPE_SETTINGS):
        return []
    requests = [JobRequest.for_symbol(JobKind.FORECAST, symbol)]
    async with sessions() as session:
        champion = await ModelVersionRepository(session).champion(symbol)
        retraining = await JobRepository(session).has_pending(
            symbol=symbol, kind=JobKind.RETRAIN.value
        )
    if champion is not None and not retraining:
        shape = champion.params.get("model", {}) if isinstance(champion.params, dict) else {}
        if any(shape.get(name) != after[name] for name in SHAPE_SETTINGS):
            requests.append(JobRequest.retrain(symbol, RetrainParams()))
    return requests
