"""Artifacts: safetensors weights plus JSON metadata; reloading gives bit-identical predictions,
and the inference path never imports Lightning or MLflow."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load, save

from forecasting.artifacts import (
    METADATA_FILE,
    WEIGHTS_FILE,
    InvalidArtifactError,
    ModelArtifact,
)
from forecasting.model import LSTMForecaster
from forecasting.predictor import LSTMPredictor


@pytest.fixture(scope="module")
def artifact(fitted_lstm: LSTMForecaster) -> ModelArtifact:
    return fitted_lstm.to_artifact(symbol="KO", metrics={"lstm_mase": 1.25})


def test_reloaded_model_predicts_bit_identically(
    fitted_lstm: LSTMForecaster, artifact: ModelArtifact, ko_bars: pd.DataFrame, tmp_path: Path
) -> None:
    artifact.write_dir(tmp_path / "model")
    reloaded = LSTMForecaster.from_artifact(ModelArtifact.read_dir(tmp_path / "model"))
    origins = np.arange(10, len(ko_bars))
    before = fitted_lstm.predict_log_returns(ko_bars, origins)
    after = reloaded.predict_log_returns(ko_bars, origins)
    assert np.array_equal(before, after)
    for name, tensor in fitted_lstm.predictor.state_dict().items():
        assert torch.equal(tensor, reloaded.predictor.state_dict()[name])
    assert reloaded.quantiles.keys() == fitted_lstm.quantiles.keys()
    for level, values in fitted_lstm.quantiles.items():
        assert np.array_equal(values, reloaded.quantiles[level])
    assert reloaded.predict(ko_bars) == fitted_lstm.predict(ko_bars)


def test_metadata_describes_the_model(artifact: ModelArtifact, fitted_lstm: LSTMForecaster) -> None:
    metadata = artifact.metadata
    assert metadata["model_kind"] == "lstm"
    assert metadata["symbol"] == "KO"
    assert metadata["model_config"]["features"] == ["log_return", "range", "volume"]
    assert metadata["model_config"]["lookback"] == 10
    assert metadata["model_config"]["horizon"] == 3
    assert metadata["network"] == {
        "input_size": 3,
        "hidden_size": 8,
        "num_layers": 1,
        "dropout": 0.0,
        "horizon": 3,
        "head": "student_t",
        "members": 1,
    }
    assert set(metadata["scalers"]) == {"features", "target"}
    assert set(metadata["conformal"]) == {"0.8", "0.95"}
    assert metadata["data"]["rows"] == 400
    assert metadata["metrics"] == {"lstm_mase": 1.25}
    assert metadata["versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert "lightning" in metadata["versions"]
    # Plain JSON all the way down.
    assert json.loads(artifact.metadata_json) == metadata


def test_weights_are_plain_safetensors(
    artifact: ModelArtifact, fitted_lstm: LSTMForecaster
) -> None:
    tensors = load(artifact.weights)
    assert set(tensors) == set(fitted_lstm.predictor.state_dict())


def test_files_on_disk(artifact: ModelArtifact, tmp_path: Path) -> None:
    directory = artifact.write_dir(tmp_path / "out")
    assert sorted(p.name for p in directory.iterdir()) == [METADATA_FILE, WEIGHTS_FILE]
    assert (directory / WEIGHTS_FILE).read_bytes() == artifact.weights
    assert ModelArtifact.read_dir(directory) == artifact


def test_artifact_survives_pickling_between_processes(artifact: ModelArtifact) -> None:
    assert pickle.loads(pickle.dumps(artifact)) == artifact


def test_weights_of_another_shape_are_refused(artifact: ModelArtifact) -> None:
    tensors = load(artifact.weights)
    tensors["head.weight"] = torch.zeros(5, 8)
    tampered = ModelArtifact(weights=save(tensors), metadata=artifact.metadata)
    with pytest.raises(InvalidArtifactError, match="do not match"):
        LSTMPredictor.from_artifact(tampered)


def test_missing_or_extra_weights_are_refused(artifact: ModelArtifact) -> None:
    tensors = load(artifact.weights)
    del tensors["head.bias"]
    with pytest.raises(InvalidArtifactError, match="do not match"):
        LSTMPredictor.from_artifact(
            ModelArtifact(weights=save(tensors), metadata=artifact.metadata)
        )


def test_garbage_weights_are_refused(artifact: ModelArtifact) -> None:
    with pytest.raises(InvalidArtifactError, match="unreadable weights"):
        LSTMPredictor.from_artifact(
            ModelArtifact(weights=b"\x80\x04not safetensors", metadata=artifact.metadata)
        )


def test_incomplete_metadata_is_refused(artifact: ModelArtifact) -> None:
    metadata = {k: v for k, v in artifact.metadata.items() if k != "scalers"}
    with pytest.raises(InvalidArtifactError, match="scalers"):
        ModelArtifact(weights=artifact.weights, metadata=metadata)
    with pytest.raises(InvalidArtifactError, match="format_version"):
        ModelArtifact(
            weights=artifact.weights, metadata={**artifact.metadata, "format_version": 99}
        )
    with pytest.raises(InvalidArtifactError, match="JSON"):
        ModelArtifact(
            weights=artifact.weights, metadata={**artifact.metadata, "metrics": {"x": np.inf}}
        )


def test_unreadable_directory_is_refused(artifact: ModelArtifact, tmp_path: Path) -> None:
    with pytest.raises(InvalidArtifactError, match=WEIGHTS_FILE):
        ModelArtifact.read_dir(tmp_path)
    directory = artifact.write_dir(tmp_path / "m")
    (directory / METADATA_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidArtifactError, match="not JSON"):
        ModelArtifact.read_dir(directory)


def test_inference_imports_neither_lightning_nor_mlflow(
    artifact: ModelArtifact, ko_bars: pd.DataFrame, tmp_path: Path
) -> None:
    """The API process forecasts through forecasting.predictor without paying for Lightning."""
    artifact.write_dir(tmp_path / "model")
    ko_bars.to_csv(tmp_path / "bars.csv", index=False)
    script = textwrap.dedent(
        f"""
        import sys
        from forecasting.artifacts import ModelArtifact
        from forecasting.bars import read_bars_csv
        from forecasting.predictor import LSTMPredictor, NaivePredictor
        bars = read_bars_csv({str(tmp_path / "bars.csv")!r})
        predictor = LSTMPredictor.from_artifact(ModelArtifact.read_dir({str(tmp_path / "model")!r}))
        forecast = predictor.predict(bars)
        NaivePredictor.from_bars(bars, 3).predict(bars)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning", "mlflow"))
        print(len(forecast.steps), heavy)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "3 []"
