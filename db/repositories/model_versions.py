"""Queries on trained model versions, their artifacts, and the champion of each symbol."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from db.base import utcnow
from db.models import ModelArtifactRow, ModelStatus, ModelVersion
from db.repositories._dialect import is_postgresql


class ModelVersionNotFoundError(LookupError):
    """No model version with that id (or for that symbol and name)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"no model version {what}")
        self.what = what


@dataclass(frozen=True, kw_only=True)
class NewModelVersion:
    """Everything recorded about a freshly trained model, before the gate decides its status."""

    symbol: str
    weights: bytes
    metadata: dict[str, Any]
    kind: str = "lstm"
    model_name: str | None = None
    mlflow_run_id: str | None = None
    registry_name: str | None = None
    registry_version: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    baseline_metrics: dict[str, Any] = field(default_factory=dict)
    backtest: dict[str, Any] = field(default_factory=dict)
    train_start: date | None = None
    train_end: date | None = None
    training_seconds: float | None = None
    job_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class StoredArtifact:
    """A version's artifact as read for serving: its weights and metadata."""

    weights: bytes
    metadata: dict[str, Any]


_BINARY_ARTIFACTS = (
    "SELECT model_version_id, weights, metadata FROM model_artifacts "
    "WHERE model_version_id = ANY(%s)"
)


class ModelVersionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        new: NewModelVersion,
        *,
        status: ModelStatus = ModelStatus.CHALLENGER,
        status_reason: str | None = None,
    ) -> ModelVersion:
        """Record a model version and its artifact. Use :meth:`promote` to make it champion."""
        if status is ModelStatus.CHAMPION:
            raise ValueError("add the version as a challenger, then promote it")
        row = ModelVersion(
            symbol=new.symbol,
            model_name=new.model_name,
            kind=new.kind,
            status=status,
            status_reason=status_reason,
            mlflow_run_id=new.mlflow_run_id,
            registry_name=new.registry_name,
            registry_version=new.registry_version,
            params=new.params,
            metrics=new.metrics,
            baseline_metrics=new.baseline_metrics,
            backtest=new.backtest,
            train_start=new.train_start,
            train_end=new.train_end,
            training_seconds=new.training_seconds,
            job_id=new.job_id,
        )
        row.artifact = ModelArtifactRow(
            weights=new.weights,
            metadata_json=new.metadata,
            sha256=hashlib.sha256(new.weights).hexdigest(),
        )
        self._session.add(row)
        await self._session.flush()
        return row

    async def get(self, version_id: int) -> ModelVersion:
        row = await self._session.get(ModelVersion, version_id)
        if row is None:
            raise ModelVersionNotFoundError(f"with id {version_id}")
        return row

    async def list(
        self,
        *,
        symbol: str | None = None,
        status: ModelStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Sequence[ModelVersion]:
        query = select(ModelVersion).order_by(ModelVersion.id.desc()).limit(limit).offset(offset)
        if symbol is not None:
            query = query.where(ModelVersion.symbol == symbol)
        if status is not None:
            query = query.where(ModelVersion.status == status)
        return (await self._session.execute(query)).scalars().all()

    async def symbols_with_versions(self, symbols: Sequence[str]) -> set[str]:
        """Those of ``symbols`` that have at least one model version (trained at least once)."""
        if not symbols:
            return set()
        result = await self._session.execute(
            select(ModelVersion.symbol).where(ModelVersion.symbol.in_(list(symbols))).distinct()
        )
        return set(result.scalars())

    async def champion_ids(self, symbols: Sequence[str]) -> dict[str, int]:
        """The champion version id of each of ``symbols`` that has one, in one query."""
        if not symbols:
            return {}
        result = await self._session.execute(
            select(ModelVersion.symbol, ModelVersion.id).where(
                ModelVersion.symbol.in_(list(symbols)),
                ModelVersion.status == ModelStatus.CHAMPION,
            )
        )
        return {row[0]: row[1] for row in result}

    async def artifacts(self, version_ids: Sequence[int]) -> dict[int, StoredArtifact]:
        """The weights and metadata of ``version_ids`` (each distinct one read once), in one
        query. On PostgreSQL the rows come in binary: as text, every weight byte travels as two
        hex digits that the server encodes and the client decodes (a refresh batch of 50 LSTM
        champions reads 31 MB of weights)."""
        if not version_ids:
            return {}
        ids = sorted(set(version_ids))
        if is_postgresql(self._session):
            return await self._artifacts_in_binary(ids)
        result = await self._session.execute(
            select(
                ModelArtifactRow.model_version_id,
                ModelArtifactRow.weights,
                ModelArtifactRow.metadata_json,
            ).where(ModelArtifactRow.model_version_id.in_(ids))
        )
        return {row[0]: StoredArtifact(weights=row[1], metadata=row[2]) for row in result}

    async def _artifacts_in_binary(self, ids: Sequence[int]) -> dict[int, StoredArtifact]:
        """:meth:`artifacts` through a binary psycopg cursor on the session's own connection (in
        its transaction; the connection's JSON loader is SQLAlchemy's, as for every query)."""
        connection = await self._session.connection()
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        async with driver.cursor(binary=True) as cursor:
            await cursor.execute(_BINARY_ARTIFACTS, (ids,))
            rows = await cursor.fetchall()
        return {row[0]: StoredArtifact(weights=bytes(row[1]), metadata=row[2]) for row in rows}

    async def champion(self, symbol: str) -> ModelVersion | None:
        result = await self._session.execute(
            select(ModelVersion).where(
                ModelVersion.symbol == symbol, ModelVersion.status == ModelStatus.CHAMPION
            )
        )
        return result.scalar_one_or_none()

    async def latest_named(self, symbol: str, model_name: str) -> ModelVersion | None:
        """The newest version of ``symbol`` trained under the label ``model_name``."""
        result = await self._session.execute(
            select(ModelVersion)
            .where(ModelVersion.symbol == symbol, ModelVersion.model_name == model_name)
            .order_by(ModelVersion.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def promote(self, version_id: int) -> ModelVersion | None:
        """Make ``version_id`` its symbol's champion; returns the champion it replaced.

        The old champion is retired first, then the new one promoted, in the caller's
        transaction; the partial unique index on champions makes a racing promotion fail rather
        than leave two champions.
        """
        row = await self.get(version_id)
        previous = await self.champion(row.symbol)
        if previous is not None and previous.id == row.id:
            return None
        if previous is not None:
            await self._session.execute(
                update(ModelVersion)
                .where(ModelVersion.id == previous.id)
                .values(status=ModelStatus.RETIRED)
            )
            previous.status = ModelStatus.RETIRED
        row.status = ModelStatus.CHAMPION
        row.status_reason = None
        row.promoted_at = utcnow()
        await self._session.flush()
        return previous

    async def reject(self, version_id: int, reason: str) -> ModelVersion:
        row = await self.get(version_id)
        row.status = ModelStatus.REJECTED
        row.status_reason = reason
        await self._session.flush()
        return row

    async def retire(self, version_id: int, reason: str) -> ModelVersion:
        """Take a champion out of service (the gate demoted it) without promoting another."""
        row = await self.get(version_id)
        row.status = ModelStatus.RETIRED
        row.status_reason = reason
        await self._session.flush()
        return row

    async def artifact(self, version_id: int) -> ModelArtifactRow:
        """The weights and metadata of a version (loaded only when asked for)."""
        result = await self._session.execute(
            select(ModelVersion)
            .options(selectinload(ModelVersion.artifact))
            .where(ModelVersion.id == version_id)
        )
        row = result.scalar_one_or_none()
        if row is None or row.artifact is None:
            raise ModelVersionNotFoundError(f"with id {version_id} (or it has no artifact)")
        return row.artifact
