"""The retrain job's one call: backtest a configuration, refit it on all the history, record the
run in MLflow, register the version and ask the promotion gate.

Inputs and outputs are plain picklable values, because the scheduler runs this in a child process.
It never moves the ``champion`` alias: whoever commits the promotion (the scheduler, after its
database transaction; the ``train`` command) calls :func:`forecasting.tracking.set_champion_alias`.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from forecasting.artifacts import ModelArtifact
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.promotion import PromotionDecision, PromotionPolicy
from forecasting.symbols import normalize_symbol

if TYPE_CHECKING:
    from forecasting.backtest import BacktestReport
    from forecasting.model import LSTMForecaster
    from forecasting.tracking import TrainingRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainingOutcome:
    """Everything the caller records about one challenger."""

    artifact: ModelArtifact
    backtest: dict[str, Any]
    decision: PromotionDecision
    metrics: dict[str, float]
    mlflow_run_id: str | None
    registry_name: str | None
    registry_version: int | None
    data_start: date
    data_end: date
    training_seconds: float


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {key: float(value) for key, value in metrics.items() if math.isfinite(float(value))}


def _prefixed(prefix: str, values: dict[str, float | None]) -> dict[str, float | None]:
    return {f"{prefix}{key}": value for key, value in values.items()}


def train_challenger(
    *,
    symbol: str,
    bars: pd.DataFrame,
    model_config: ModelConfig,
    train_config: TrainConfig,
    backtest_config: BacktestConfig,
    policy: PromotionPolicy | str,
    champion: ModelArtifact | None,
    tracking_uri: str | None,
    model_name: str | None = None,
    artifact_root: str | None = None,
    experiment: str = "stockcast",
) -> TrainingOutcome:
    """Train and judge a challenger for ``symbol`` on validated ``bars``.

    1. Walk-forward backtest of the configuration against naive, drift and ``champion`` (the
       gate's evidence). 2. Refit on the most recent ``max_history`` bars (its validation tail
    drives early stopping and calibrates the intervals). 3. With ``tracking_uri``: one MLflow run
    with parameters, per-epoch losses, metrics, hardware use, the model files, ``backtest.json``
    and ``backtest.png``, registered as a version of ``model_name`` (default
    ``stockcast-<SYMBOL>``) tagged with the gate's decision. ``artifact_root`` is used when the
    experiment has to be created (a local store keeps artifacts under the service's data dir).
    """
    from forecasting.backtest import walk_forward
    from forecasting.model import LSTMForecaster
    from forecasting.promotion import decide_promotion
    from forecasting.tracking import TrainingRun, registered_model_name
    from forecasting.validation import clean_bars

    symbol = normalize_symbol(symbol)
    bars = clean_bars(bars)
    registry_name = model_name or registered_model_name(symbol)
    run: TrainingRun | None = None
    if tracking_uri:
        run = TrainingRun.start(
            tracking_uri,
            run_name=f"{symbol}-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}",
            experiment=experiment,
            artifact_root=artifact_root,
            tags={"symbol": symbol, "model_kind": "lstm", "registered_model": registry_name},
        )
    try:
        started = time.perf_counter()
        logger.info("training challenger for %s on %d rows: backtest first", symbol, len(bars))
        report = walk_forward(
            bars,
            model_config=model_config,
            train_config=train_config,
            backtest_config=backtest_config,
            champion=champion,
        )
        backtest_seconds = time.perf_counter() - started
        logger.info(
            "backtest of %s done in %.0fs; fitting the final model", symbol, backtest_seconds
        )
        final = LSTMForecaster(
            model_config, train_config, epoch_sinks=[run.log_epoch] if run else ()
        )
        final.fit(bars)
        summary = final.summary
        training_seconds = summary.training_seconds if summary else 0.0
        metrics = _finite(report.summary_metrics())
        metrics["training_seconds"] = training_seconds
        metrics["backtest_seconds"] = backtest_seconds
        metrics["inference_latency_ms"] = float(report.inference["lstm_latency_ms_median"])
        champion_mase = report.metric("champion", "mase") if "champion" in report.scores else None
        if champion_mase is not None:
            metrics["champion_mase"] = champion_mase
        decision = decide_promotion(
            policy,
            challenger_mase=report.metric("lstm", "mase"),
            dm_p_value_worse_than_naive=report.dm.p_value_lstm_worse,
            champion_mase=champion_mase,
        )
        logger.info("gate for %s: %s (%s)", symbol, decision.promote, decision.reason)
        artifact = final.to_artifact(symbol=symbol, metrics=metrics)
        backtest = report.to_dict()
        version: int | None = None
        if run is not None:
            version = _record_run(
                run,
                symbol=symbol,
                registry_name=registry_name,
                final=final,
                report_dict=backtest,
                png=_plot(report, symbol),
                artifact=artifact,
                metrics=metrics,
                hardware=(final.hardware, report.inference.get("hardware", {})),
                decision=decision,
                configs=(model_config, train_config, backtest_config),
            )
            run.end()
    except BaseException:
        if run is not None:
            run.end(failed=True)
        raise
    data = artifact.metadata["data"]
    return TrainingOutcome(
        artifact=artifact,
        backtest=backtest,
        decision=decision,
        metrics=metrics,
        mlflow_run_id=run.run_id if run else None,
        registry_name=registry_name if run else None,
        registry_version=version,
        data_start=date.fromisoformat(data["start"]),
        data_end=date.fromisoformat(data["end"]),
        training_seconds=training_seconds,
    )


def _plot(report: BacktestReport, symbol: str) -> bytes:
    from forecasting.plots import backtest_png

    return backtest_png(report, title=symbol)


def _record_run(
    run: TrainingRun,
    *,
    symbol: str,
    registry_name: str,
    final: LSTMForecaster,
    report_dict: dict[str, Any],
    png: bytes,
    artifact: ModelArtifact,
    metrics: dict[str, float],
    hardware: tuple[dict[str, float | None], dict[str, float | None]],
    decision: PromotionDecision,
    configs: tuple[ModelConfig, TrainConfig, BacktestConfig],
) -> int:
    """Parameters, metrics, hardware, files and the registry version of one training run."""
    model_config, train_config, backtest_config = configs
    data = artifact.metadata["data"]
    run.log_params(
        {
            "symbol": symbol,
            "model_name": registry_name,
            "model": model_config.to_dict(),
            "train": train_config.to_dict(),
            "backtest": backtest_config.to_dict(),
            "data_start": data["start"],
            "data_end": data["end"],
            "rows": data["rows"],
            "device": artifact.metadata["training"]["device"],
        }
    )
    train_hw, inference_hw = hardware
    gpu = bool(train_hw.get("gpu_available")) or bool(inference_hw.get("gpu_available"))
    run.log_metrics(
        {
            **metrics,
            **_prefixed("train_hw_", {k: v for k, v in train_hw.items() if k != "gpu_available"}),
            **_prefixed(
                "inference_hw_", {k: v for k, v in inference_hw.items() if k != "gpu_available"}
            ),
            "gpu_available": 1.0 if gpu else 0.0,
            "epochs_run": float(len(final.history)),
        }
    )
    run.log_model(artifact)
    with tempfile.TemporaryDirectory(prefix="stockcast-run-") as tmp:
        directory = Path(tmp)
        (directory / "backtest.json").write_text(
            json.dumps(report_dict, indent=2, allow_nan=False), encoding="utf-8"
        )
        (directory / "backtest.png").write_bytes(png)
        run.log_dir(directory)
    gate_tags = {
        "gate.promote": "true" if decision.promote else "false",
        "gate.policy": decision.policy.value,
        "gate.reason": decision.reason,
    }
    run.set_tags(gate_tags)
    return run.register(
        registry_name,
        tags={**gate_tags, "symbol": symbol, "data_end": str(data["end"])},
        description=f"{symbol} LSTM trained on {data['start']}..{data['end']}: {decision.reason}",
    )
