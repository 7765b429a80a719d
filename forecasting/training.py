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
from forecasting.gate import GateDecision
from forecasting.promotion import PromotionPolicy
from forecasting.symbols import normalize_symbol

if TYPE_CHECKING:
    from forecasting.backtest import BacktestReport, GlobalCandidate
    from forecasting.global_model import GlobalForecaster, GlobalSymbolView
    from forecasting.model import LSTMForecaster
    from forecasting.tracking import TrainingRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainingOutcome:
    """Everything the caller records about one challenger."""

    artifact: ModelArtifact
    backtest: dict[str, Any]
    decision: GateDecision
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
    options: ChallengerOptions | None = None,
) -> TrainingOutcome:
    """Train and judge a challenger for ``symbol`` on validated ``bars``.

    1. Walk-forward backtest of every candidate (naive, drift and the LSTM, each with every scale
       model) and of ``champion``, and the gate's decision under ``policy`` on that evidence.
    2. Refit on the most recent ``max_history`` bars (validation for early stopping, a calibration
       split untouched by training for the served intervals, whose recipe goes into the artifact
       with the decision). 3. With ``tracking_uri``: one MLflow run with parameters, per-epoch
    losses, metrics, hardware use, the model files, ``backtest.json`` and ``backtest.png``,
    registered as a version of ``model_name`` (default ``stockcast-<SYMBOL>``) tagged with the
    gate's decision; ``artifact_root`` is used when the experiment has to be created.
    ``options``: the global candidate and warm starting (:class:`ChallengerOptions`)."""
    from forecasting.tracking import TrainingRun, registered_model_name
    from forecasting.validation import clean_bars

    symbol = normalize_symbol(symbol)
    bars = clean_bars(bars)
    registry_name = model_name or registered_model_name(symbol)
    run: TrainingRun | None = None
    if tracking_uri:  # (a local store keeps artifacts under the service's data dir)
        run = TrainingRun.start(
            tracking_uri,
            run_name=f"{symbol}-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}",
            experiment=experiment,
            artifact_root=artifact_root,
            tags={"symbol": symbol, "model_kind": "lstm", "registered_model": registry_name},
        )
    configs = (model_config, train_config, backtest_config)
    judged = (policy, champion, options or ChallengerOptions())
    try:
        fitted = _backtest_and_fit(
            symbol=symbol, bars=bars, configs=configs, judged=judged, run=run
        )
        version: int | None = None
        if run is not None:
            version = _record_run(
                run,
                symbol=symbol,
                registry_name=registry_name,
                final=fitted.final,
                report_dict=fitted.backtest,
                png=_plot(fitted.report, symbol),
                artifact=fitted.artifact,
                metrics=fitted.metrics,
                hardware=(fitted.final.hardware, fitted.report.inference.get("hardware", {})),
                decision=fitted.report.decision,
                configs=configs,
            )
            run.end()
    except BaseException:
        if run is not None:
            run.end(failed=True)
        raise
    artifact, metrics, data = fitted.artifact, fitted.metrics, fitted.artifact.metadata["data"]
    return TrainingOutcome(
        artifact=artifact,
        backtest=fitted.backtest,
        decision=fitted.report.decision,
        metrics=metrics,
        mlflow_run_id=run.run_id if run else None,
        registry_name=registry_name if run else None,
        registry_version=version,
        data_start=date.fromisoformat(data["start"]),
        data_end=date.fromisoformat(data["end"]),
        training_seconds=metrics["training_seconds"],
    )


@dataclass(frozen=True, kw_only=True)
class ChallengerOptions:
    """Beyond the per-symbol LSTM: ``global_candidate`` adds the global LSTM to the backtest and
    ``global_final`` (the global model fitted on all the data) is served when the gate picks it;
    ``warm_start_epochs`` fine-tunes instead of training fresh: backtest folds after the first
    from the previous fold's networks, the final fit from the champion's (never weights that saw
    a window they are judged on)."""

    global_candidate: GlobalCandidate | None = None
    global_final: GlobalForecaster | None = None
    warm_start_epochs: int | None = None


@dataclass(frozen=True, kw_only=True)
class _Fitted:
    report: BacktestReport
    backtest: dict[str, Any]
    final: LSTMForecaster | GlobalSymbolView
    artifact: ModelArtifact
    metrics: dict[str, float]


def _backtest_and_fit(
    *,
    symbol: str,
    bars: pd.DataFrame,
    configs: tuple[ModelConfig, TrainConfig, BacktestConfig],
    judged: tuple[PromotionPolicy | str, ModelArtifact | None, ChallengerOptions],
    run: TrainingRun | None,
) -> _Fitted:
    """The backtest and the gate's decision, then the final fit with the served intervals."""
    policy, champion, options = judged
    from forecasting.backtest import walk_forward
    from forecasting.serving import serving_metadata

    model_config, train_config, backtest_config = configs
    started = time.perf_counter()
    logger.info("training challenger for %s on %d rows: backtest first", symbol, len(bars))
    report = walk_forward(
        bars,
        model_config=model_config,
        train_config=train_config,
        backtest_config=backtest_config,
        champion=champion,
        policy=policy,
        global_candidate=options.global_candidate,
        warm_epochs=options.warm_start_epochs,
    )
    backtest_seconds = time.perf_counter() - started
    logger.info("backtest of %s done in %.0fs; fitting the final model", symbol, backtest_seconds)
    final = _final_fit(
        symbol,
        bars,
        report=report,
        champion=champion,
        run=run,
        settings=(model_config, train_config, options),
    )
    serving = serving_metadata(final, bars, _as_served(report, final))  # type: ignore[arg-type]
    metrics = _finite(report.summary_metrics())
    metrics["training_seconds"] = final.summary.training_seconds if final.summary else 0.0
    metrics["backtest_seconds"] = backtest_seconds
    metrics["inference_latency_ms"] = float(report.inference["lstm_latency_ms_median"])
    decision = report.decision
    logger.info(
        "gate for %s: promote=%s, serve %s (%s)",
        symbol,
        decision.promote,
        decision.selected,
        decision.reason,
    )
    return _Fitted(
        report=report,
        backtest=report.to_dict(),
        final=final,
        artifact=final.to_artifact(symbol=symbol, metrics=metrics, serving=serving),
        metrics=metrics,
    )


def _final_fit(
    symbol: str,
    bars: pd.DataFrame,
    *,
    report: BacktestReport,
    champion: ModelArtifact | None,
    run: TrainingRun | None,
    settings: tuple[ModelConfig, TrainConfig, ChallengerOptions],
) -> LSTMForecaster | GlobalSymbolView:
    """The promoted global model's view of ``symbol`` when the gate chose ``glstm``; otherwise
    the per-symbol final fit, warm started from the champion's weights when asked."""
    from forecasting.candidates import GLOBAL_POINT
    from forecasting.global_model import GlobalSymbolView
    from forecasting.model import LSTMForecaster
    from forecasting.warm_start import warm_start_from_artifact

    model_config, train_config, options = settings
    glob = options.global_final
    if report.decision.point == GLOBAL_POINT and glob is not None and symbol in glob.symbols:
        return GlobalSymbolView(glob, symbol)
    warm = warm_start_from_artifact(champion, model_config, options.warm_start_epochs)
    final = LSTMForecaster(
        model_config,
        train_config,
        epoch_sinks=[run.log_epoch] if run else (),
        warm_start=warm,
    )
    return final.fit(bars)


def _as_served(report: BacktestReport, final: object) -> BacktestReport:
    from forecasting.global_model import GlobalSymbolView, as_served_by_global

    if isinstance(final, GlobalSymbolView):
        served: BacktestReport = as_served_by_global(report)
        return served
    return report


def _plot(report: BacktestReport, symbol: str) -> bytes:
    from forecasting.plots import backtest_png

    return backtest_png(report, title=symbol)


def _record_run(
    run: TrainingRun,
    *,
    symbol: str,
    registry_name: str,
    final: LSTMForecaster | GlobalSymbolView,
    report_dict: dict[str, Any],
    png: bytes,
    artifact: ModelArtifact,
    metrics: dict[str, float],
    hardware: tuple[dict[str, float | None], dict[str, float | None]],
    decision: GateDecision,
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
        "gate.selected": decision.selected,
        "gate.reason": decision.reason[:5000],
    }
    run.set_tags(gate_tags)
    return run.register(
        registry_name,
        tags={**gate_tags, "symbol": symbol, "data_end": str(data["end"])},
        description=f"{symbol} LSTM trained on {data['start']}..{data['end']}: {decision.reason}",
    )
