"""Reading the trained model versions of the service's registry."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ModelStatus
from db.repositories import ModelVersionRepository
from web.schemas.model_versions import ModelDetail, ModelSummary, model_detail, model_summary


class ModelVersionService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, mlflow_ui_url: str | None
    ) -> None:
        self._sessions = sessions
        self._mlflow_ui_url = mlflow_ui_url

    async def list(
        self, *, symbol: str | None, status: ModelStatus | None, limit: int, offset: int
    ) -> list[ModelSummary]:
        async with self._sessions() as session:
            rows = await ModelVersionRepository(session).list(
                symbol=symbol, status=status, limit=limit, offset=offset
            )
            return [model_summary(row) for row in rows]

    async def get(self, version_id: int) -> ModelDetail:
        async with self._sessions() as session:
            row = await ModelVersionRepository(session).get(version_id)
            return model_detail(row, mlflow_ui_url=self._mlflow_ui_url)
