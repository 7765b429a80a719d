"""Start-up reconciliation: a registry version without a ``model_versions`` row (its training's
node was killed between registering and recording it) is tagged orphaned; recorded versions, and
models this service did not create, are left alone. Real MLflow (SQLite store), real database."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from db.repositories import ModelVersionRepository, NewModelVersion
from forecasting.tracking import ORPHAN_TAG, REGISTERED_MODEL_DESCRIPTION, make_client
from scheduler.config import SchedulerConfig, TrainingDefaults
from scheduler.reconcile import reconcile_orphan_versions

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_an_unrecorded_registry_version_is_tagged_orphaned(
    database_url: str, sessions, tmp_path: Path
) -> None:
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = make_client(tracking_uri)
    source = tmp_path / "model"
    source.mkdir()
    for name in ("stockcast-KO", "killme"):
        client.create_registered_model(name, description=f"{REGISTERED_MODEL_DESCRIPTION}; test")
    client.create_registered_model("someone-elses", description="not ours")
    for name, count in (("stockcast-KO", 2), ("killme", 1), ("someone-elses", 1)):
        for _ in range(count):
            client.create_model_version(name, source=str(source))
    async with sessions() as session, session.begin():
        await ModelVersionRepository(session).add(
            NewModelVersion(
                symbol="KO",
                weights=b"\x00weights",
                metadata={"lookback": 60},
                registry_name="stockcast-KO",
                registry_version=1,
                train_start=date(2020, 1, 1),
                train_end=date(2024, 1, 1),
            )
        )
    config = SchedulerConfig(
        database_url=database_url,
        source="sample",
        training=TrainingDefaults(tracking_uri=tracking_uri),
    )

    marked = await reconcile_orphan_versions(sessions, config, identity="node-test")
    if not config.is_sqlite:
        # A cluster gives other nodes ten minutes to record what they just registered.
        assert marked == []
        return
    assert sorted(marked) == [("killme", 1), ("stockcast-KO", 2)]
    tags = client.get_model_version("stockcast-KO", "2").tags
    assert "node-test" in tags[ORPHAN_TAG]
    assert ORPHAN_TAG not in client.get_model_version("stockcast-KO", "1").tags
    assert ORPHAN_TAG not in client.get_model_version("someone-elses", "1").tags
    # Idempotent: a second start finds nothing new.
    assert await reconcile_orphan_versions(sessions, config, identity="node-2") == []
