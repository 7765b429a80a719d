"""``stockcast backtest`` and ``stockcast train`` on the real CSV prices, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from forecasting.sources import SAMPLE_DIRECTORY
from stockcast.cli import main

SMALL = [
    "--start", "2018-11-01",
    "--epochs", "2",
    "--folds", "1",
    "--test-size", "20",
    "--lookback", "10",
    "--horizon", "3",
]  # fmt: skip


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline, on the bundled sample's real prices (SPY ends in August 2020)."""
    monkeypatch.setenv("STOCKCAST_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("STOCKCAST_SOURCE", "sample")
    for name in ("STOCKCAST_MLFLOW_TRACKING_URI", "STOCKCAST_MLFLOW_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_backtest_json_is_the_only_output(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "SPY", "--json", *SMALL]) == 0
    out = capsys.readouterr().out
    payload = json.loads(out)
    assert payload["symbol"] == "SPY"
    for model in ("lstm", "naive", "drift"):
        for key in ("mase", "theil_u2", "directional_accuracy"):
            assert isinstance(payload["points"][model][key], float)
    # the candidate the gate would serve, and every candidate's probabilistic figures
    assert payload["selected"] == payload["decision"]["selected"]
    for figures in payload["candidates"].values():
        for key in ("coverage_80", "coverage_95", "interval_score_80", "interval_score_95"):
            assert isinstance(figures[key], float)
        for key in ("pinball", "crps", "mase", "theil_u2"):
            assert isinstance(figures[key], float)
        assert "p_one_sided_better" in figures["dm"]["interval_score_vs_naive_sigma60"]
    assert payload["windows"] == 20
    assert payload["config"]["model"]["lookback"] == 10


def test_backtest_table_compares_the_models(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "spy", "--source", f"csv:{SAMPLE_DIRECTORY}", "--fit-once", *SMALL])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert "fit once" in lines[0]
    assert lines[1].split() == ["metric", "lstm", "naive", "drift"]
    mase = next(line for line in lines if line.startswith("MASE (log returns)"))
    assert len(mase.split()) == 6  # the label's three words, then one figure per model
    assert any(line.startswith("Diebold-Mariano LSTM vs naive") for line in lines)
    assert any("(one-sided, LSTM better)" in line for line in lines)
    assert any(line.startswith("naive+ewma") for line in lines)
    assert lines[-1].startswith("gate (evidence) would serve ")


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["backtest", "../SPY"], 2, "invalid symbol"),
        (["backtest", "SPY", "--start", "2020-02-30"], 2, "--start must be a date"),
        (["backtest", "NOPE"], 1, "unknown symbol"),
        (["backtest", "SPY", "--start", "2020-07-01"], 1, "needs at least"),
        (["backtest", "SPY", "--start", "2020-01-02", "--end", "2019-01-02"], 2, "after"),
        (["backtest", "SPY", "--horizon", "99"], 2, "horizon"),
        (["backtest", "SPY", "--source", "csv:/no/such/dir"], 2, "does not exist"),
        (["train", "SPY", "--policy", "sometimes"], 2, "unknown promotion policy"),
        (["backtest", "SPY", "--policy", "not_worse_than_naive"], 2, "retired"),
    ],
)
def test_user_errors_are_one_line_and_non_zero(
    env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], status: int, message: str
) -> None:
    assert main(argv) == status
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("stockcast: error:")
    assert message in captured.err


def test_train_registers_promotes_and_writes_files(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = env / "model-out"
    argv = ["train", "SPY", *SMALL, "--policy", "always", "--output", str(output)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "promoted to champion" in out
    assert sorted(p.name for p in output.iterdir()) == [
        "backtest.json",
        "metadata.json",
        "weights.safetensors",
    ]
    uri = f"sqlite:///{(env / 'var' / 'mlflow.db').as_posix()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("stockcast-SPY", "champion")
    assert int(champion.version) == 1
    # Artifacts of the local store live under the data directory.
    assert str(champion.source).startswith((env / "var" / "mlartifacts").resolve().as_uri())

    # A second run is gated against the champion it just loaded from the registry.
    assert main(["train", "SPY", *SMALL, "--policy", "beat_champion"]) == 0
    out = capsys.readouterr().out
    assert "champion" in out.splitlines()[1]  # the table has a champion column
    latest = client.get_model_version("stockcast-SPY", "2")
    promoted = latest.tags["gate.promote"] == "true"
    alias = client.get_model_version_by_alias("stockcast-SPY", "champion").version
    assert int(alias) == (2 if promoted else 1)
