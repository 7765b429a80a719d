"""MLflow in a temporary local store: a training run with parameters, per-epoch and final
metrics, hardware figures and artifacts; a registered version tagged with the gate's decision;
the champion alias; loading the champion back; a failed run marked as such."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from forecasting import tracking
from forecasting.artifacts import ModelArtifact
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.promotion import PromotionPolicy
from forecasting.symbols import InvalidSymbolError
from forecasting.training import TrainingOutcome, train_challenger
from forecasting.windowing import InsufficientDataError

BACKTEST = BacktestConfig(folds=2, test_size=30)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root / 'db' / 'mlflow.db'}", (root / "artifacts").as_uri()


@pytest.fixture(scope="module")
def outcome(
    store: tuple[str, str],
    ko_bars: pd.DataFrame,
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
) -> TrainingOutcome:
    uri, artifact_root = store
    return train_challenger(
        symbol="ko",
        bars=ko_bars,
        model_config=tiny_model_config,
        train_config=tiny_train_config,
        backtest_config=BACKTEST,
        policy=PromotionPolicy.ALWAYS,
        champion=None,
        tracking_uri=uri,
        artifact_root=artifact_root,
    )


def _client(store: tuple[str, str]) -> MlflowClient:
    return MlflowClient(tracking_uri=store[0], registry_uri=store[0])


def test_registered_model_name() -> None:
    assert tracking.registered_model_name(" spy ") == "stockcast-SPY"
    with pytest.raises(InvalidSymbolError):
        tracking.registered_model_name("../etc")


def test_outcome_is_plain_and_picklable(outcome: TrainingOutcome) -> None:
    restored = pickle.loads(pickle.dumps(outcome))
    assert restored == outcome
    assert outcome.decision.promote is True
    assert outcome.registry_name == "stockcast-KO"
    assert outcome.registry_version == 1
    assert outcome.metrics["lstm_mase"] == outcome.backtest["points"]["lstm"]["mase"]
    lstm = outcome.backtest["candidates"]["lstm+ewma"]
    assert outcome.metrics["dm_p_value"] == lstm["dm"]["squared_error_vs_naive"]["p_two_sided"]
    assert (
        outcome.metrics["dm_sq_lstm_vs_naive_p_one_sided_better"]
        == lstm["dm"]["squared_error_vs_naive"]["p_one_sided_better"]
    )
    # promoted under 'always': the artifact serves the LSTM's intervals and says why
    serving = outcome.artifact.metadata["serving"]
    assert serving["selected"] == outcome.decision.selected == outcome.backtest["selected"]
    assert outcome.artifact.metadata["intervals"]["scale_kind"] == outcome.decision.lstm_scale
    assert outcome.data_end == pd.Timestamp("2018-01-19").date()
    assert outcome.training_seconds > 0


def test_run_holds_params_epoch_losses_metrics_and_hardware(
    outcome: TrainingOutcome, store: tuple[str, str]
) -> None:
    client = _client(store)
    assert outcome.mlflow_run_id is not None
    run = client.get_run(outcome.mlflow_run_id)
    assert run.info.status == "FINISHED"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "stockcast"
    assert experiment.artifact_location == store[1]
    params = run.data.params
    assert params["symbol"] == "KO"
    assert params["model.lookback"] == "10"
    assert params["model.features"] == "log_return,range,volume"
    assert params["train.epochs"] == "3"
    assert params["backtest.folds"] == "2"
    assert params["data_end"] == "2018-01-19"
    assert params["rows"] == "400"
    train_history = client.get_metric_history(outcome.mlflow_run_id, "train_loss")
    val_history = client.get_metric_history(outcome.mlflow_run_id, "val_loss")
    epochs = outcome.artifact.metadata["training"]["epochs_run"]
    assert sorted(m.step for m in train_history) == list(range(epochs))
    assert len(val_history) == epochs
    metrics = run.data.metrics
    for name in ("lstm_mase", "naive_mase", "drift_mase", "lstm_theil_u2", "dm_p_value"):
        assert metrics[name] == pytest.approx(outcome.metrics[name])
    assert metrics["training_seconds"] > 0
    assert metrics["inference_latency_ms"] > 0
    assert metrics["train_hw_process_rss_mb_max"] > 0
    assert "inference_hw_process_cpu_percent_mean" in metrics
    assert metrics["gpu_available"] == float(torch.cuda.is_available())
    assert run.data.tags["gate.promote"] == "true"
    assert run.data.tags["gate.selected"] == outcome.decision.selected


def test_run_artifacts(outcome: TrainingOutcome, store: tuple[str, str], tmp_path: Path) -> None:
    client = _client(store)
    assert outcome.mlflow_run_id is not None
    top = {f.path for f in client.list_artifacts(outcome.mlflow_run_id)}
    assert top == {"model", "backtest.json", "backtest.png"}
    model_files = {f.path for f in client.list_artifacts(outcome.mlflow_run_id, "model")}
    assert model_files == {"model/weights.safetensors", "model/metadata.json"}
    local = Path(client.download_artifacts(outcome.mlflow_run_id, "backtest.json", str(tmp_path)))
    assert json.loads(local.read_text()) == outcome.backtest
    png = Path(client.download_artifacts(outcome.mlflow_run_id, "backtest.png", str(tmp_path)))
    assert png.read_bytes().startswith(b"\x89PNG")


def test_version_is_registered_with_the_gate_decision(
    outcome: TrainingOutcome, store: tuple[str, str]
) -> None:
    client = _client(store)
    version = client.get_model_version("stockcast-KO", "1")
    assert version.run_id == outcome.mlflow_run_id
    assert version.tags["gate.promote"] == "true"
    assert version.tags["gate.policy"] == "always"
    assert str(version.source).endswith("/model")


def test_champion_alias_moves_only_when_set(
    outcome: TrainingOutcome, store: tuple[str, str]
) -> None:
    uri = store[0]
    assert tracking.champion_version(uri, "KO") is None
    assert tracking.load_champion(uri, "KO") is None
    assert outcome.registry_version is not None
    tracking.set_champion_alias(uri, "KO", outcome.registry_version)
    assert tracking.champion_version(uri, "ko") == 1
    loaded = tracking.load_champion(uri, "KO")
    assert loaded is not None
    version, artifact = loaded
    assert version == 1
    assert isinstance(artifact, ModelArtifact)
    assert artifact == outcome.artifact
    alias = _client(store).get_model_version_by_alias("stockcast-KO", "champion")
    assert int(alias.version) == 1


def test_a_failed_training_ends_its_run_as_failed(
    store: tuple[str, str],
    ko_bars: pd.DataFrame,
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
) -> None:
    uri, artifact_root = store
    with pytest.raises(InsufficientDataError):
        train_challenger(
            symbol="XOM",
            bars=ko_bars.head(100),
            model_config=tiny_model_config,
            train_config=tiny_train_config,
            backtest_config=BACKTEST,
            policy="evidence",
            champion=None,
            tracking_uri=uri,
            artifact_root=artifact_root,
        )
    client = _client(store)
    experiment = client.get_experiment_by_name("stockcast")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "tags.symbol = 'XOM'")
    assert [r.info.status for r in runs] == ["FAILED"]
    assert client.search_model_versions("name = 'stockcast-XOM'") == []


def test_training_without_tracking_logs_nothing(
    ko_bars: pd.DataFrame,
    tiny_model_config: ModelConfig,
    tiny_train_config: TrainConfig,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = train_challenger(
        symbol="KO",
        bars=ko_bars,
        model_config=tiny_model_config,
        train_config=tiny_train_config,
        backtest_config=BacktestConfig(folds=1, test_size=30),
        policy="evidence",
        champion=None,
        tracking_uri=None,
    )
    assert result.mlflow_run_id is None
    # The artifact carries what serving the gate's choice needs: its own recipe when it is
    # promoted (the LSTM's point, or a simple point with its volatility head), else the simple
    # candidate's, which needs no network.
    serving = result.artifact.metadata["serving"]
    assert serving["selected"] == result.decision.selected
    served = (
        result.artifact.metadata["intervals"] if result.decision.promote else serving["intervals"]
    )
    assert (served["point"], served["scale_kind"]) == (
        result.decision.point,
        result.decision.scale,
    )
    assert served["calibration"]["scores"]
    assert result.artifact.metadata["symbol"] == "KO"
    assert capsys.readouterr().out == ""
