"""Walk-forward (rolling-origin, expanding-window) backtest of the LSTM against the naive and drift
forecasts, and optionally the current champion, all scored on the same forecast origins.

The last ``folds * test_size`` origins with a complete horizon are split into consecutive blocks.
With ``refit`` every model is trained on everything before its block (the last ``max_history`` rows
of it); otherwise once, before the first block. Errors are scored on prices, per horizon step and
over all steps, and the LSTM is tested against naive with Diebold-Mariano.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from forecasting.artifacts import ModelArtifact
from forecasting.baselines import DriftForecaster, NaiveForecaster
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.forecast import (
    INTERVAL_LEVELS,
    FloatArray,
    Forecaster,
    IndexArray,
    price_intervals,
)
from forecasting.windowing import InsufficientDataError, log_returns_ahead, required_rows

logger = logging.getLogger(__name__)

#: The models every backtest scores, in report order.
BASE_MODELS = ("lstm", "naive", "drift")
#: Summary metrics in report order (all computed on prices).
METRICS = (
    "mase",
    "theil_u2",
    "directional_accuracy",
    "coverage_80",
    "coverage_95",
    "rmse",
    "mae",
    "mape",
    "r2",
)


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True, kw_only=True)
class Fold:
    """One block of test origins and the data its models were trained on (ISO dates)."""

    index: int
    train_start: str
    train_end: str
    test_start: str
    test_end: str
    origins: int
    trained: bool
    lstm_epochs: int | None = None
    lstm_seconds: float | None = None
    device: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "train_start": self.train_start,
            "train_end": self.train_end,
            "test_start": self.test_start,
            "test_end": self.test_end,
            "origins": self.origins,
            "trained": self.trained,
            "lstm_epochs": self.lstm_epochs,
            "lstm_seconds": self.lstm_seconds,
            "device": self.device,
        }


@dataclass(frozen=True, kw_only=True)
class ModelScores:
    """Summary metrics over all steps and the same metrics for each horizon step."""

    summary: dict[str, float]
    per_step: tuple[dict[str, float], ...]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {key: _json_number(value) for key, value in self.summary.items()}
        out["per_step"] = [
            {
                key: _json_number(value) if isinstance(value, float) else value
                for key, value in step.items()
            }
            for step in self.per_step
        ]
        return out


@dataclass(frozen=True, kw_only=True)
class DMResult:
    """Diebold-Mariano of the LSTM against naive (squared error on prices)."""

    statistic: float
    p_value: float
    p_value_lstm_worse: float
    n: int
    per_step: tuple[dict[str, float], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "statistic": _json_number(self.statistic),
            "p_value": self.p_value,
            "p_value_lstm_worse": self.p_value_lstm_worse,
            "n": self.n,
            "per_step": [
                {key: _json_number(value) for key, value in step.items()} for step in self.per_step
            ],
        }


@dataclass(frozen=True, kw_only=True)
class BacktestSeries:
    """The raw forecasts behind the figures (for the plot; not part of the JSON report)."""

    origin_dates: tuple[pd.Timestamp, ...]
    #: The date each (origin, step) forecast is for: shape (origins, horizon).
    target_dates: npt.NDArray[np.datetime64]
    last_close: FloatArray
    actual: FloatArray
    predicted: dict[str, FloatArray]
    lower: dict[str, dict[float, FloatArray]]
    upper: dict[str, dict[float, FloatArray]]
    fold_of_origin: IndexArray


@dataclass(frozen=True, kw_only=True)
class BacktestReport:
    """Scores per model (``lstm``, ``naive``, ``drift`` and, when given, ``champion``)."""

    horizon: int
    scores: dict[str, ModelScores]
    dm: DMResult
    folds: tuple[Fold, ...]
    windows: int
    config: dict[str, Any]
    inference: dict[str, Any]
    champion: dict[str, Any] | None
    series: BacktestSeries = field(repr=False)

    def metric(self, model: str, name: str) -> float:
        return self.scores[model].summary[name]

    def summary_metrics(self) -> dict[str, float]:
        """Flat figures for a database row or MLflow: ``lstm_mase``, ..., ``dm_p_value``."""
        out: dict[str, float] = {}
        for model in BASE_MODELS:
            for name, value in self.scores[model].summary.items():
                out[f"{model}_{name}"] = value
        out["dm_statistic"] = self.dm.statistic
        out["dm_p_value"] = self.dm.p_value
        out["dm_p_value_lstm_worse"] = self.dm.p_value_lstm_worse
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {model: scores.to_dict() for model, scores in self.scores.items()}
        out["dm"] = self.dm.to_dict()
        out["folds"] = [fold.to_dict() for fold in self.folds]
        out["windows"] = self.windows
        out["horizon"] = self.horizon
        out["config"] = self.config
        out["inference"] = self.inference
        if self.champion is not None:
            out["champion_info"] = self.champion
        return out


def _scores(
    *,
    actual: FloatArray,
    predicted: FloatArray,
    lower: Mapping[float, FloatArray],
    upper: Mapping[float, FloatArray],
    last_close: FloatArray,
    scale: FloatArray,
) -> ModelScores:
    """Price-space metrics over all steps and per step. ``scale`` is each origin's MASE scale
    (the in-sample naive error of the data its fold was trained on)."""
    from forecasting import metrics

    naive = np.repeat(last_close[:, None], actual.shape[1], axis=1)
    scaled = scale[:, None]

    def figures(columns: slice | int) -> dict[str, float]:
        a, p, n = actual[:, columns], predicted[:, columns], naive[:, columns]
        return {
            # Scaled errors divided by 1.0: each origin keeps its own fold's scale.
            "mase": metrics.mase(a / scaled, p / scaled, 1.0),
            "theil_u2": metrics.theil_u2(a, p, n),
            "directional_accuracy": metrics.directional_accuracy(a, p, last_close),
            "coverage_80": metrics.coverage(a, lower[0.8][:, columns], upper[0.8][:, columns]),
            "coverage_95": metrics.coverage(a, lower[0.95][:, columns], upper[0.95][:, columns]),
            "rmse": metrics.rmse(a, p),
            "mae": metrics.mae(a, p),
            "mape": metrics.mape(a, p),
            "r2": metrics.r2(a.ravel(), p.ravel()),
        }

    per_step = tuple(
        {"step": float(h + 1), **figures(slice(h, h + 1))} for h in range(actual.shape[1])
    )
    return ModelScores(summary=figures(slice(None)), per_step=per_step)


def _diebold_mariano(actual: FloatArray, predicted: FloatArray, last_close: FloatArray) -> DMResult:
    """DM of the LSTM against naive per step (lag h-1), and over all steps on each origin's mean
    squared error (lag H-1): ``metrics.diebold_mariano`` squares the errors it is given, so the
    root of the per-origin mean squared error is passed as that origin's error."""
    from forecasting.metrics import diebold_mariano

    errors = actual - predicted
    naive_errors = actual - last_close[:, None]
    horizon = actual.shape[1]
    per_step = []
    for h in range(horizon):
        result = diebold_mariano(errors[:, h], naive_errors[:, h], horizon=h + 1)
        per_step.append(
            {
                "step": float(h + 1),
                "statistic": result.statistic,
                "p_value": result.p_value,
                "p_value_lstm_worse": result.p_value_model_worse,
            }
        )
    overall = diebold_mariano(
        np.sqrt(np.mean(errors**2, axis=1)),
        np.sqrt(np.mean(naive_errors**2, axis=1)),
        horizon=horizon,
    )
    return DMResult(
        statistic=overall.statistic,
        p_value=overall.p_value,
        p_value_lstm_worse=overall.p_value_model_worse,
        n=overall.n,
        per_step=tuple(per_step),
    )


@dataclass
class _FoldModels:
    models: dict[str, Forecaster]
    scale: float
    fold: Fold


@dataclass
class _Predictions:
    """Per model, the stacked log-return forecasts and interval bounds in prices."""

    log_returns: dict[str, FloatArray]
    lower: dict[str, dict[float, FloatArray]]
    upper: dict[str, dict[float, FloatArray]]
    latencies_ms: list[float]
    hardware: dict[str, float | None]


def _iso(bars: pd.DataFrame, row: int) -> str:
    return pd.Timestamp(bars["date"].iloc[row]).date().isoformat()


def _champion_predictor(
    champion: ModelArtifact | None, horizon: int, first_origin: int
) -> tuple[Forecaster | None, dict[str, Any] | None]:
    """The champion as a forecaster for these windows, or why it cannot be scored on them."""
    if champion is None:
        return None, None
    from forecasting.predictor import LSTMPredictor

    predictor = LSTMPredictor.from_artifact(champion)
    data = champion.metadata.get("data", {})
    info: dict[str, Any] = {
        "evaluated": False,
        "reason": None,
        "data_end": data.get("end") if isinstance(data, dict) else None,
        "created_at": champion.metadata.get("created_at"),
    }
    if predictor.horizon != horizon:
        info["reason"] = f"champion horizon {predictor.horizon} differs from {horizon}"
        return None, info
    if predictor.min_rows > first_origin + 1:
        info["reason"] = f"champion lookback {predictor.model_config.lookback} is too long"
        return None, info
    info["evaluated"] = True
    return predictor, info


def _fit_fold(
    bars: pd.DataFrame,
    block: IndexArray,
    index: int,
    model_config: ModelConfig,
    train_config: TrainConfig,
) -> _FoldModels:
    """Train the LSTM and both baselines on everything up to the block's first origin."""
    from forecasting.metrics import naive_scale
    from forecasting.model import LSTMForecaster

    start = int(block[0])
    train_bars = bars.iloc[: start + 1]
    history = (
        train_bars
        if train_config.max_history is None
        else train_bars.tail(train_config.max_history)
    )
    logger.info(
        "backtest fold %d: training on %d rows up to %s", index + 1, len(history), _iso(bars, start)
    )
    lstm = LSTMForecaster(model_config, train_config).fit(train_bars)
    options: dict[str, Any] = {
        "horizon": model_config.horizon,
        "lookback": model_config.lookback,
        "val_fraction": train_config.val_fraction,
        "max_history": train_config.max_history,
    }
    models: dict[str, Forecaster] = {
        "lstm": lstm,
        "naive": NaiveForecaster(**options).fit(train_bars),
        "drift": DriftForecaster(**options).fit(train_bars),
    }
    summary = lstm.summary
    fold = Fold(
        index=index,
        train_start=pd.Timestamp(history["date"].iloc[0]).date().isoformat(),
        train_end=_iso(bars, start),
        test_start=_iso(bars, start),
        test_end=_iso(bars, int(block[-1])),
        origins=int(block.size),
        trained=True,
        lstm_epochs=None if summary is None else summary.epochs_run,
        lstm_seconds=None if summary is None else round(summary.training_seconds, 3),
        device=None if summary is None else summary.device,
    )
    scale = naive_scale(history["close"].to_numpy(dtype=np.float64))
    return _FoldModels(models=models, scale=scale, fold=fold)


def _reuse_fold(
    bars: pd.DataFrame, block: IndexArray, index: int, first: _FoldModels
) -> _FoldModels:
    """Fit-once mode: the first fold's models, scored on a later block."""
    fold = Fold(
        index=index,
        train_start=first.fold.train_start,
        train_end=first.fold.train_end,
        test_start=_iso(bars, int(block[0])),
        test_end=_iso(bars, int(block[-1])),
        origins=int(block.size),
        trained=False,
    )
    return _FoldModels(models=first.models, scale=first.scale, fold=fold)


def _predict_blocks(
    bars: pd.DataFrame,
    blocks: list[IndexArray],
    fitted: list[_FoldModels],
    names: list[str],
    champion: Forecaster | None,
) -> _Predictions:
    """Every model's forecasts on every block, hardware sampled meanwhile. The LSTM forecasts one
    origin at a time, as the service does, which gives its per-forecast latency."""
    from forecasting.hardware import HardwareMonitor

    closes = bars["close"].to_numpy(dtype=np.float64)
    returns: dict[str, list[FloatArray]] = {name: [] for name in names}
    bounds: dict[str, dict[float, list[tuple[FloatArray, FloatArray]]]] = {
        name: {level: [] for level in INTERVAL_LEVELS} for name in names
    }
    latencies: list[float] = []
    with HardwareMonitor(interval_s=0.05) as monitor:
        for block, fold_models in zip(blocks, fitted, strict=True):
            models = dict(fold_models.models)
            if champion is not None:
                models["champion"] = champion
            for name in names:
                model = models[name]
                if name == "lstm":
                    rows = []
                    for i in range(block.size):
                        started = time.perf_counter()
                        rows.append(model.predict_log_returns(bars, block[i : i + 1])[0])
                        latencies.append((time.perf_counter() - started) * 1000.0)
                    predicted = np.vstack(rows)
                else:
                    predicted = model.predict_log_returns(bars, block)
                returns[name].append(predicted)
                for level in INTERVAL_LEVELS:
                    half_width = np.asarray(model.quantiles[level], dtype=np.float64)
                    bounds[name][level].append(
                        price_intervals(closes[block], predicted, half_width)
                    )
    return _Predictions(
        log_returns={name: np.vstack(parts) for name, parts in returns.items()},
        lower={
            name: {level: np.vstack([lo for lo, _ in pairs]) for level, pairs in by.items()}
            for name, by in bounds.items()
        },
        upper={
            name: {level: np.vstack([hi for _, hi in pairs]) for level, pairs in by.items()}
            for name, by in bounds.items()
        },
        latencies_ms=latencies,
        hardware=monitor.summary(),
    )


def _inference_summary(predictions: _Predictions) -> dict[str, Any]:
    latencies = predictions.latencies_ms
    return {
        "lstm_latency_ms_median": statistics.median(latencies),
        "lstm_latency_ms_p95": float(np.percentile(latencies, 95)),
        "forecasts": len(latencies),
        "hardware": {
            key: float(value) if value is not None and math.isfinite(float(value)) else None
            for key, value in predictions.hardware.items()
        },
    }


def _blocks(
    n_rows: int,
    model_config: ModelConfig,
    train_config: TrainConfig,
    backtest_config: BacktestConfig,
) -> list[IndexArray]:
    """The test blocks: the last ``folds * test_size`` origins with a complete horizon."""
    horizon, folds, size = model_config.horizon, backtest_config.folds, backtest_config.test_size
    first = n_rows - horizon - folds * size
    fit_rows = required_rows(
        lookback=model_config.lookback, horizon=horizon, val_fraction=train_config.val_fraction
    )
    if first + 1 < fit_rows:
        raise InsufficientDataError(
            needed=fit_rows - 1 + folds * size + horizon,
            got=n_rows,
            purpose=f"a walk-forward backtest of {folds} fold(s) x {size} origins",
        )
    return [
        np.arange(first + k * size, first + (k + 1) * size, dtype=np.int64) for k in range(folds)
    ]


def walk_forward(
    bars: pd.DataFrame,
    *,
    model_config: ModelConfig,
    train_config: TrainConfig,
    backtest_config: BacktestConfig,
    champion: ModelArtifact | None = None,
) -> BacktestReport:
    """Backtest ``model_config`` trained with ``train_config`` on validated ``bars``.

    The champion artifact, when given, is scored as it is (not refitted) on the same windows; its
    training data may overlap them, which flatters it (``champion_info.in_sample_windows`` says how
    many), so a challenger that matches it has done at least as well out of sample.
    """
    from forecasting.validation import clean_bars

    bars = clean_bars(bars)
    horizon = model_config.horizon
    blocks = _blocks(len(bars), model_config, train_config, backtest_config)
    fitted: list[_FoldModels] = []
    for index, block in enumerate(blocks):
        if index > 0 and not backtest_config.refit:
            fitted.append(_reuse_fold(bars, block, index, fitted[0]))
        else:
            fitted.append(_fit_fold(bars, block, index, model_config, train_config))

    champion_model, champion_info = _champion_predictor(champion, horizon, int(blocks[0][0]))
    names = [*BASE_MODELS, *(["champion"] if champion_model is not None else [])]
    predictions = _predict_blocks(bars, blocks, fitted, names, champion_model)

    closes = bars["close"].to_numpy(dtype=np.float64)
    origins = np.concatenate(blocks)
    last_close = closes[origins]
    actual = last_close[:, None] * np.exp(log_returns_ahead(closes, origins, horizon))
    scale = np.concatenate([np.full(b.size, f.scale) for b, f in zip(blocks, fitted, strict=True)])
    predicted = {
        name: last_close[:, None] * np.exp(predictions.log_returns[name]) for name in names
    }
    scores = {
        name: _scores(
            actual=actual,
            predicted=predicted[name],
            lower=predictions.lower[name],
            upper=predictions.upper[name],
            last_close=last_close,
            scale=scale,
        )
        for name in names
    }
    origin_dates = bars["date"].iloc[origins]
    if champion_info is not None and champion_info.get("data_end"):
        end = pd.Timestamp(champion_info["data_end"])
        champion_info["in_sample_windows"] = int((origin_dates <= end).sum())
    return BacktestReport(
        horizon=horizon,
        scores=scores,
        dm=_diebold_mariano(actual, predicted["lstm"], last_close),
        folds=tuple(f.fold for f in fitted),
        windows=int(origins.size),
        config={
            "model": model_config.to_dict(),
            "train": train_config.to_dict(),
            "backtest": backtest_config.to_dict(),
        },
        inference=_inference_summary(predictions),
        champion=champion_info,
        series=BacktestSeries(
            origin_dates=tuple(pd.Timestamp(d) for d in origin_dates),
            target_dates=bars["date"].to_numpy()[origins[:, None] + np.arange(1, horizon + 1)],
            last_close=last_close,
            actual=actual,
            predicted=predicted,
            lower=predictions.lower,
            upper=predictions.upper,
            fold_of_origin=np.concatenate(
                [np.full(b.size, k, dtype=np.int64) for k, b in enumerate(blocks)]
            ),
        ),
    )
