"""MLflow: one run per training (parameters, per-epoch losses, final metrics, hardware, artifacts),
the Model Registry entry ``stockcast-<SYMBOL>`` per symbol, and the ``champion`` alias.

Everything goes through an explicit ``MlflowClient`` (no fluent global run), so a training in a
child process or beside other threads cannot log into someone else's run. Works with a local store
(``sqlite:///PATH``, no server) and with a tracking server URL.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from forecasting.artifacts import ModelArtifact
from forecasting.errors import PortableError
from forecasting.symbols import normalize_symbol

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from forecasting.callbacks import EpochLosses

logger = logging.getLogger(__name__)

EXPERIMENT_NAME: Final = "stockcast"
CHAMPION_ALIAS: Final = "champion"
MODEL_ARTIFACT_PATH: Final = "model"
#: How a registered model this service created is described (orphan reconciliation looks for it).
REGISTERED_MODEL_DESCRIPTION: Final = "stockcast LSTM forecasts"
#: MLflow refuses longer parameter values.
_MAX_PARAM_LENGTH: Final = 6000


class TrackingError(PortableError, RuntimeError):
    """MLflow refused or failed an operation; the message says which and where."""

    def __init__(self, action: str, tracking_uri: str, cause: Exception) -> None:
        super().__init__(f"MLflow could not {action} at {tracking_uri}: {cause}")
        self.action = action
        self.tracking_uri = tracking_uri


def registered_model_name(symbol: str) -> str:
    """The registry name of a symbol's models: ``stockcast-<SYMBOL>``."""
    return f"stockcast-{normalize_symbol(symbol)}"


def _quiet_mlflow() -> None:
    """Keep MLflow from printing banners, migration logs and download progress bars; these are
    read when mlflow is imported, so they are set (unless the user set them) just before."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def make_client(tracking_uri: str) -> MlflowClient:
    """A client for tracking and registry at ``tracking_uri``; a local SQLite store's directory is
    created first (SQLite creates the file, not its parents)."""
    _quiet_mlflow()
    from mlflow import MlflowClient

    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "error_code", ""))


def _experiment_id(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name, artifact_location=artifact_root or None))
    except MlflowException as exc:
        # Another process created it between our lookup and our create.
        if _error_code(exc) != "RESOURCE_ALREADY_EXISTS":
            raise
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested configs as ``model.lookback=60``-style string parameters."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = ",".join(str(item) for item in value)
        else:
            flat[name] = str(value)
    return {key: value[:_MAX_PARAM_LENGTH] for key, value in flat.items()}


class TrainingRun:
    """An open MLflow run. Use as a context manager: it ends FINISHED, or FAILED on an exception.

    :meth:`log_epoch` is an :data:`~forecasting.callbacks.EpochSink`, so it can be handed to the
    forecaster to log ``train_loss`` / ``val_loss`` with ``step = epoch`` while training runs.
    """

    def __init__(self, client: MlflowClient, run_id: str, artifact_uri: str, tracking_uri: str):
        self._client = client
        self.run_id = run_id
        self.artifact_uri = artifact_uri
        self.tracking_uri = tracking_uri
        self._ended = False

    @classmethod
    def start(
        cls,
        tracking_uri: str,
        *,
        run_name: str,
        experiment: str = EXPERIMENT_NAME,
        artifact_root: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Self:
        """Open a run in ``experiment`` (created with ``artifact_root`` if it does not exist)."""
        client = make_client(tracking_uri)
        try:
            experiment_id = _experiment_id(client, experiment, artifact_root)
            run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
        except Exception as exc:
            raise TrackingError("start a run", tracking_uri, exc) from exc
        return cls(client, run.info.run_id, str(run.info.artifact_uri), tracking_uri)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.end(failed=exc_type is not None)

    def end(self, *, failed: bool = False) -> None:
        if self._ended:
            return
        self._ended = True
        self._client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        flat = flatten_params(params)
        self._client.log_batch(self.run_id, params=[Param(k, v) for k, v in flat.items()])

    def log_metrics(self, metrics: Mapping[str, float | None], *, step: int = 0) -> None:
        """Finite numbers only: a missing figure (no GPU) is left out rather than logged as NaN."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [
            Metric(key, float(value), now, step)
            for key, value in metrics.items()
            if value is not None and math.isfinite(float(value))
        ]
        # MLflow caps a batch at 1000 metrics.
        for start in range(0, len(batch), 1000):
            self._client.log_batch(self.run_id, metrics=batch[start : start + 1000])

    def log_epoch(self, losses: EpochLosses) -> None:
        self.log_metrics(
            {"train_loss": losses.train_loss, "val_loss": losses.val_loss}, step=losses.epoch
        )

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        self._client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_dir(self, local_dir: str | Path, artifact_path: str | None = None) -> None:
        self._client.log_artifacts(self.run_id, str(local_dir), artifact_path)

    def log_model(self, artifact: ModelArtifact) -> str:
        """Upload the model files under ``model/``; returns their artifact URI."""
        with tempfile.TemporaryDirectory(prefix="stockcast-model-") as tmp:
            artifact.write_dir(tmp)
            self.log_dir(tmp, MODEL_ARTIFACT_PATH)
        return f"{self.artifact_uri}/{MODEL_ARTIFACT_PATH}"

    def register(
        self,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> int:
        """Register the run's ``model/`` as a new version of ``name`` (created if missing)."""
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_registered_model(name)
        except MlflowException as exc:
            if _error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
                raise
            try:
                self._client.create_registered_model(
                    name, description=f"{REGISTERED_MODEL_DESCRIPTION}; alias 'champion' serves."
                )
            except MlflowException as race:
                if _error_code(race) != "RESOURCE_ALREADY_EXISTS":
                    raise
        version = self._client.create_model_version(
            name,
            source=f"{self.artifact_uri}/{MODEL_ARTIFACT_PATH}",
            run_id=self.run_id,
            tags=dict(tags or {}),
            description=description,
        )
        return int(version.version)


def set_champion_alias(
    tracking_uri: str, symbol: str, version: int, *, model_name: str | None = None
) -> None:
    """Point the ``champion`` alias of the symbol's registered model at ``version``.

    Only the promotion path calls this (the scheduler after committing the promotion to its
    database, the ``train`` command when the gate promotes).
    """
    name = model_name or registered_model_name(symbol)
    client = make_client(tracking_uri)
    try:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, str(int(version)))
        client.set_model_version_tag(name, str(int(version)), "champion_since", _now_iso())
    except Exception as exc:
        raise TrackingError(f"set {name} v{version} as champion", tracking_uri, exc) from exc


def champion_version(
    tracking_uri: str, symbol: str, *, model_name: str | None = None
) -> int | None:
    """The version the ``champion`` alias points at, or None (no model, or none promoted)."""
    from mlflow.exceptions import MlflowException

    name = model_name or registered_model_name(symbol)
    client = make_client(tracking_uri)
    try:
        return int(client.get_model_version_by_alias(name, CHAMPION_ALIAS).version)
    except MlflowException as exc:
        if _error_code(exc) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise TrackingError(f"read the champion of {name}", tracking_uri, exc) from exc


def load_model_version(
    tracking_uri: str, symbol: str, version: int, *, model_name: str | None = None
) -> ModelArtifact:
    """Download a registered version's ``model/`` files and read them (no unpickling)."""
    name = model_name or registered_model_name(symbol)
    client = make_client(tracking_uri)
    try:
        model_version = client.get_model_version(name, str(int(version)))
        with tempfile.TemporaryDirectory(prefix="stockcast-download-") as tmp:
            if model_version.run_id:
                local = client.download_artifacts(model_version.run_id, MODEL_ARTIFACT_PATH, tmp)
            else:
                from mlflow.artifacts import download_artifacts

                local = download_artifacts(
                    artifact_uri=model_version.source, dst_path=tmp, tracking_uri=tracking_uri
                )
            return ModelArtifact.read_dir(local)
    except Exception as exc:
        raise TrackingError(f"load {name} v{version}", tracking_uri, exc) from exc


def load_champion(
    tracking_uri: str, symbol: str, *, model_name: str | None = None
) -> tuple[int, ModelArtifact] | None:
    """The champion's version and artifact, or None when the symbol has no champion."""
    version = champion_version(tracking_uri, symbol, model_name=model_name)
    if version is None:
        return None
    return version, load_model_version(tracking_uri, symbol, version, model_name=model_name)


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


#: The tag an orphaned registry version gets: registered by a training whose database record
#: never followed (its process was killed between the two).
ORPHAN_TAG: Final = "stockcast.orphan"


def mark_orphan_versions(
    tracking_uri: str,
    recorded: Collection[tuple[str, int]],
    *,
    older_than_s: float,
    note: str,
    now_ms: int | None = None,
) -> list[tuple[str, int]]:
    """Tag every version of a stockcast registered model (one this service created: its
    description says so; custom ``model_name`` ones included) that the database does not know
    (``recorded``: its ``(registry name, version)`` pairs) with :data:`ORPHAN_TAG` = ``note``.

    Marked, not deleted: the run and its files stay for a person to look at, and nothing serves a
    version the database does not list. Versions younger than ``older_than_s`` are left alone:
    another node may be between registering one and recording it. Returns what it tagged now.
    """
    known = {(name, int(version)) for name, version in recorded}
    cutoff = (now_ms if now_ms is not None else int(time.time() * 1000)) - older_than_s * 1000
    marked: list[tuple[str, int]] = []
    try:
        client = make_client(tracking_uri)
        names = [
            model.name
            for model in client.search_registered_models()
            if (model.description or "").startswith(REGISTERED_MODEL_DESCRIPTION)
        ]
        versions = [v for name in names for v in client.search_model_versions(f"name = '{name}'")]
        for version in versions:
            key = (str(version.name), int(version.version))
            if key in known or ORPHAN_TAG in (version.tags or {}):
                continue
            if int(version.creation_timestamp or 0) > cutoff:
                continue
            client.set_model_version_tag(key[0], str(key[1]), ORPHAN_TAG, note)
            marked.append(key)
    except Exception as exc:
        raise TrackingError("reconcile orphaned model versions", tracking_uri, exc) from exc
    return marked
