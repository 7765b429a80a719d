"""``stockcast backtest`` and ``stockcast train`` on the real CSV prices, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from stockcast.cli import main

SMALL = [
    "--start", "2024-01-01",
    "--epochs", "2",
    "--folds", "1",
    "--test-size", "20",
    "--lookback", "10",
    "--horizon", "3",
]  # fmt: skip


@pytest.fixture
def env(tmp_path: Path, shared_prices_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STOCKCAST_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("STOCKCAST_SOURCE", f"csv:{shared_prices_dir}")
    for name in ("STOCKCAST_MLFLOW_TRACKING_URI", "STOCKCAST_MLFLOW_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_backtest_json_is_the_only_output(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "KO", "--json", *SMALL]) == 0
    out = capsys.readouterr().out
    payload = json.loads(out)
    assert payload["symbol"] == "KO"
    for model in ("lstm", "naive", "drift"):
        for key in ("mase", "theil_u2", "directional_accuracy", "coverage_80"):
            assert isinstance(payload[model][key], float)
    assert payload["windows"] == 20
    assert payload["config"]["model"]["lookback"] == 10


def test_backtest_table_compares_the_models(
    env: Path, shared_prices_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["backtest", "ko", "--source", f"csv:{shared_prices_dir}", "--fit-once", *SMALL])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert "fit once" in lines[0]
    assert lines[1].split() == ["metric", "lstm", "naive", "drift"]
    mase = next(line for line in lines if line.startswith("MASE"))
    assert len(mase.split()) == 4
    assert any(line.startswith("Diebold-Mariano") for line in lines)


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["backtest", "../KO"], 2, "invalid symbol"),
        (["backtest", "KO", "--start", "2024-02-30"], 2, "--start must be a date"),
        (["backtest", "NOPE"], 1, "unknown symbol"),
        (["backtest", "KO", "--start", "2025-06-01"], 1, "needs at least"),
        (["backtest", "KO", "--start", "2025-01-02", "--end", "2024-01-02"], 2, "after"),
        (["backtest", "KO", "--horizon", "99"], 2, "horizon"),
        (["backtest", "KO", "--source", "csv:/no/such/dir"], 2, "does not exist"),
        (["train", "KO", "--policy", "sometimes"], 2, "unknown promotion policy"),
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
    argv = ["train", "KO", *SMALL, "--policy", "always", "--output", str(output)]
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
    champion = client.get_model_version_by_alias("stockcast-KO", "champion")
    assert int(champion.version) == 1
    # Artifacts of the local store live under the data directory.
    assert str(champion.source).startswith((env / "var" / "mlartifacts").resolve().as_uri())

    # A second run is gated against the champion it just loaded from the registry.
    assert main(["train", "KO", *SMALL, "--policy", "beat_champion"]) == 0
    out = capsys.readouterr().out
    assert "champion" in out.splitlines()[1]  # the table has a champion column
    latest = client.get_model_version("stockcast-KO", "2")
    promoted = latest.tags["gate.promote"] == "true"
    alias = client.get_model_version_by_alias("stockcast-KO", "champion").version
    assert int(alias) == (2 if promoted else 1)
