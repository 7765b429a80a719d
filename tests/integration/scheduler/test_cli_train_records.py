"""``stockcast train`` on a migrated service database records its model there through the same
function as the scheduler's retrain job: the version, its artifact, the gate's verdict, events."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import pytest
from mlflow import MlflowClient
from sqlalchemy import select

from db.engine import create_async_db_engine, create_session_factory
from db.kinds import EventType
from db.models import Event, ModelStatus
from db.repositories import ModelVersionRepository
from forecasting.artifacts import ModelArtifact
from forecasting.predictor import LSTMPredictor
from stockcast.cli import main

pytestmark = pytest.mark.slow

SMALL = ["--start", "2024-06-01", "--epochs", "1", "--folds", "1", "--test-size", "20",
         "--lookback", "10", "--horizon", "3"]  # fmt: skip


async def _recorded(database_url: str) -> None:
    engine = create_async_db_engine(database_url)
    sessions = create_session_factory(engine)
    try:
        async with sessions() as session:
            versions = ModelVersionRepository(session)
            champion = await versions.champion("KO")
            assert champion is not None and champion.status is ModelStatus.CHAMPION
            assert champion.registry_name == "stockcast-KO" and champion.registry_version == 1
            assert champion.mlflow_run_id
            assert champion.params["source"] == "cli"
            row = await versions.artifact(champion.id)
            events = (await session.execute(select(Event).order_by(Event.id))).scalars().all()
        artifact = ModelArtifact(weights=row.weights, metadata=row.metadata_json)
        assert LSTMPredictor.from_artifact(artifact).horizon == 3
        assert [e.type for e in events] == [
            EventType.MODEL_TRAINED.value,
            EventType.MODEL_PROMOTED.value,
        ]
    finally:
        await engine.dispose()


def test_cli_training_is_recorded_and_served_like_a_scheduled_one(
    sqlite_template: Path,
    tmp_path: Path,
    shared_prices_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database = tmp_path / "service.db"
    shutil.copyfile(sqlite_template, database)
    monkeypatch.setenv("STOCKCAST_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("STOCKCAST_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("STOCKCAST_SOURCE", f"csv:{shared_prices_dir}")
    for name in ("STOCKCAST_MLFLOW_TRACKING_URI", "STOCKCAST_MLFLOW_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)

    assert main(["train", "KO", *SMALL, "--policy", "always"]) == 0
    assert "recorded as model version 1 in the service database" in capsys.readouterr().out

    anyio.run(_recorded, f"sqlite:///{database}")
    # The MLflow alias moved after the database commit, as in the scheduler.
    uri = f"sqlite:///{(tmp_path / 'var' / 'mlflow.db').as_posix()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert int(client.get_model_version_by_alias("stockcast-KO", "champion").version) == 1
