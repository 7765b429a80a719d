"""Walk-forward (rolling-origin, expanding-window) backtest of every candidate (naive, drift and
the LSTM, each with every scale model), the reference intervals and, optionally, the current
champion, all scored on the same forecast origins; then the gate's decision on that evidence.

The last ``folds * test_size`` origins with a complete horizon are split into consecutive blocks.
With ``refit`` every model is trained on everything before its block (the last ``max_history``
rows of it); otherwise once, before the first block. Each fit holds out a calibration split that
no training decision touched: its normalised scores seed each candidate's adaptive calibration,
which then learns from each test origin once its outcome has matured, as the service would.
Scoring lives in :mod:`forecasting.evaluation`, the decision in :mod:`forecasting.gate`.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from forecasting.artifacts import ModelArtifact
from forecasting.candidates import (
    GLOBAL_POINT,
    NETWORK_SCALE,
    POINT_MODELS,
    SCALE_MODELS,
    CandidateIntervals,
    adaptive_block,
    candidate_name,
    drift_slope,
    normalised_scores,
    parametric_half,
    point_forecasts,
    split_conformal_half,
)
from forecasting.champion import ChampionScoring, score_champion
from forecasting.config import BacktestConfig, ModelConfig, TrainConfig
from forecasting.conformal import DEFAULT_GAMMA, DEFAULT_WINDOW, TRACKED_LEVELS
from forecasting.forecast import INTERVAL_LEVELS, FloatArray, IndexArray
from forecasting.gate import ChampionEvidence, GateDecision, GateEvidence, decide
from forecasting.promotion import PromotionPolicy
from forecasting.windowing import InsufficientDataError, log_returns_ahead, required_rows

if TYPE_CHECKING:
    from forecasting.evaluation import ScoringContext
    from forecasting.global_model import GlobalFolds
    from forecasting.model import LSTMForecaster
    from forecasting.predictor import LSTMPredictor
    from forecasting.volatility import ScaleModel

logger = logging.getLogger(__name__)

#: The point models every backtest scores, in report order (``champion`` joins when given).
BASE_MODELS = POINT_MODELS
#: Scale models computed from prices: fitted per fold, the references' too.
_PRICE_SCALES = ("ewma", "ewma_shrunk", "garch_t", "sigma60")


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
    calibration_origins: int | None = None
    lstm_epochs: int | None = None
    lstm_seconds: float | None = None
    device: str | None = None
    garch: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "train_start": self.train_start,
            "train_end": self.train_end,
            "test_start": self.test_start,
            "test_end": self.test_end,
            "origins": self.origins,
            "trained": self.trained,
            "calibration_origins": self.calibration_origins,
            "lstm_epochs": self.lstm_epochs,
            "lstm_seconds": self.lstm_seconds,
            "device": self.device,
            "garch": self.garch,
        }


@dataclass(frozen=True, kw_only=True)
class ModelScores:
    """A point model's figures over all steps and for each horizon step."""

    summary: dict[str, float]
    per_step: tuple[dict[str, float], ...]

    def to_dict(self) -> dict[str, Any]:
        from forecasting.evaluation import json_number

        out: dict[str, Any] = {key: json_number(value) for key, value in self.summary.items()}
        out["per_step"] = [
            {key: json_number(value) for key, value in step.items()} for step in self.per_step
        ]
        return out


@dataclass(frozen=True, kw_only=True)
class BacktestSeries:
    """The raw forecasts behind the figures (for the plot and for recalibration; not part of the
    JSON report). Prices for ``predicted`` (per point model) and the bounds (per candidate and
    level); ``scores`` holds each adaptive candidate's out-of-sample normalised scores."""

    origin_dates: tuple[pd.Timestamp, ...]
    #: The date each (origin, step) forecast is for: shape (origins, horizon).
    target_dates: npt.NDArray[np.datetime64]
    last_close: FloatArray
    actual: FloatArray
    predicted: dict[str, FloatArray]
    lower: dict[str, dict[float, FloatArray]]
    upper: dict[str, dict[float, FloatArray]]
    fold_of_origin: IndexArray
    scores: dict[str, FloatArray] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class BacktestReport:
    """Scores per point model, per candidate and per reference, and the gate's decision."""

    horizon: int
    scores: dict[str, ModelScores]
    candidates: dict[str, dict[str, Any]]
    references: dict[str, dict[str, Any]]
    decision: GateDecision
    folds: tuple[Fold, ...]
    windows: int
    config: dict[str, Any]
    inference: dict[str, Any]
    champion: dict[str, Any] | None
    seeds: dict[str, Any] | None
    series: BacktestSeries = field(repr=False)

    @property
    def selected(self) -> str:
        return self.decision.selected

    def metric(self, model: str, name: str) -> float:
        return self.scores[model].summary[name]

    def candidate(self, name: str) -> dict[str, Any]:
        return self.candidates[name] if name in self.candidates else self.references[name]

    def summary_metrics(self) -> dict[str, float]:
        """Flat figures for a database row or MLflow: ``lstm_mase`` ... per point model; the
        coverage and interval scores of each point model's served intervals (``lstm_coverage_80``
        ...); ``served_*`` for the selected candidate; the named DM p-values of the LSTM against
        naive and drift; ``cand_<point>_<scale>_*`` per candidate. ``dm_p_value`` is the
        two-sided p of the LSTM against naive (squared error), the key the web reads."""
        from forecasting.report import summary_metrics

        return summary_metrics(self)

    def to_dict(self) -> dict[str, Any]:
        from forecasting.report import report_dict

        return report_dict(self)


def _iso(bars: pd.DataFrame, row: int) -> str:
    return pd.Timestamp(bars["date"].iloc[row]).date().isoformat()


@dataclass
class _FoldFit:
    """One fit: the LSTM (with its calibration and validation rows), the drift slope, the scale
    models, and the fold's MASE scale; all from data before the fold's first origin."""

    fold: Fold
    lstm: LSTMForecaster
    slope: float
    scales: dict[str, ScaleModel]
    mase_scale: FloatArray
    glstm: LSTMPredictor | None = None


@dataclass(frozen=True, kw_only=True)
class GlobalCandidate:
    """The global LSTM as a candidate of ``symbol``'s backtest: ``folds`` trains (and caches,
    for every symbol's backtest) one global network per fold cutoff."""

    symbol: str
    folds: GlobalFolds


@dataclass(frozen=True, kw_only=True)
class _FoldOptions:
    """What a fold fit may use beyond the bars: the global candidate, and the previous fold's
    networks to warm start from (``warm_epochs``; never the champion's, which may have seen
    this fold's test windows)."""

    configs: tuple[ModelConfig, TrainConfig]
    global_candidate: GlobalCandidate | None = None
    warm_epochs: int | None = None


def _fold_lstm(
    train_bars: pd.DataFrame, options: _FoldOptions, previous: _FoldFit | None
) -> LSTMForecaster:
    """The fold's per-symbol LSTM, warm started from the previous fold's networks if asked."""
    from forecasting.model import LSTMForecaster, WarmStart
    from forecasting.warm_start import network_states

    warm = None
    if options.warm_epochs and previous is not None:
        states = network_states(previous.lstm.predictor.networks)
        warm = WarmStart(states=states, epochs=options.warm_epochs)
    model_config, train_config = options.configs
    return LSTMForecaster(model_config, train_config, warm_start=warm).fit(train_bars)


def _fold_glstm(
    bars: pd.DataFrame, start: int, lstm: LSTMForecaster, candidate: GlobalCandidate | None
) -> LSTMPredictor | None:
    """The global network trained on every symbol's bars up to this fold's first origin, with
    this symbol's scalers. Its split of the symbol's rows is the per-symbol LSTM's (the same
    bars, the same fractions), so both are calibrated on the same untouched windows."""
    if candidate is None:
        return None
    cutoff = pd.Timestamp(bars["date"].iloc[start]).date()
    model = candidate.folds.at(cutoff)
    if candidate.symbol not in model.symbols:
        return None
    if not np.array_equal(model.calibration_rows(candidate.symbol), lstm.calibration_rows()):
        raise RuntimeError(f"the global model split {candidate.symbol} differently")
    return model.predictor(candidate.symbol)


def _fit_fold(
    bars: pd.DataFrame,
    block: IndexArray,
    index: int,
    options: _FoldOptions,
    previous: _FoldFit | None = None,
) -> _FoldFit:
    """Train the LSTM, estimate the drift and the scale models on everything up to the block's
    first origin (drift and GARCH on the data before the calibration split)."""
    from forecasting.scores import h_step_naive_scale
    from forecasting.volatility import fit_scale

    model_config, _ = options.configs
    start = int(block[0])
    train_bars = bars.iloc[: start + 1]
    logger.info("backtest fold %d: training up to %s", index + 1, _iso(bars, start))
    lstm = _fold_lstm(train_bars, options, previous)
    summary = lstm.summary
    if summary is None:  # pragma: no cover - fit always sets it
        raise RuntimeError("the LSTM fit left no summary")
    first_row = start + 1 - summary.rows
    calibration_start = int(lstm.calibration_rows()[0])
    closes = bars["close"].to_numpy(dtype=np.float64)
    before_calibration = closes[first_row : calibration_start + 1]
    scales = {kind: fit_scale(kind, before_calibration) for kind in _PRICE_SCALES}
    fold = Fold(
        index=index,
        train_start=_iso(bars, first_row),
        train_end=_iso(bars, start),
        test_start=_iso(bars, start),
        test_end=_iso(bars, int(block[-1])),
        origins=int(block.size),
        trained=True,
        calibration_origins=int(lstm.calibration_rows().size),
        lstm_epochs=summary.epochs_run,
        lstm_seconds=round(summary.training_seconds, 3),
        device=summary.device,
        garch=scales["garch_t"].to_dict(),
    )
    return _FoldFit(
        fold=fold,
        lstm=lstm,
        slope=drift_slope(before_calibration),
        scales=scales,
        mase_scale=h_step_naive_scale(closes[first_row : start + 1], model_config.horizon),
        glstm=_fold_glstm(bars, start, lstm, options.global_candidate),
    )


def _reuse_fold(bars: pd.DataFrame, block: IndexArray, index: int, first: _FoldFit) -> Fold:
    """Fit-once mode: the first fold's models, scored on a later block."""
    return Fold(
        index=index,
        train_start=first.fold.train_start,
        train_end=first.fold.train_end,
        test_start=_iso(bars, int(block[0])),
        test_end=_iso(bars, int(block[-1])),
        origins=int(block.size),
        trained=False,
    )


@dataclass
class _Part:
    """Forecasts of one fit at some origin rows: points and scales, (n, H) each."""

    actual: FloatArray
    points: dict[str, FloatArray]
    sigmas: dict[str, FloatArray]


def _predict_part(bars: pd.DataFrame, fit: _FoldFit, rows: IndexArray, horizon: int) -> _Part:
    closes = bars["close"].to_numpy(dtype=np.float64)
    location, deviation = fit.lstm.predict_distribution(bars, rows)
    points = {
        "naive": point_forecasts("naive", rows.size, horizon),
        "drift": point_forecasts("drift", rows.size, horizon, fit.slope),
        "lstm": location,
    }
    if fit.glstm is not None:
        points[GLOBAL_POINT] = fit.glstm.predict_distribution(bars, rows)[0]
    sigmas = {kind: scale.sigma(closes, rows, horizon) for kind, scale in fit.scales.items()}
    if deviation is not None:
        sigmas["lstm_t"] = deviation
    return _Part(actual=log_returns_ahead(closes, rows, horizon), points=points, sigmas=sigmas)


@dataclass
class _Segment:
    """Test origins scored by one fit, with its calibration and validation forecasts."""

    fit: _FoldFit
    rows: IndexArray
    test: _Part
    calibration: _Part
    validation: _Part


def _candidate_blocks(
    segments: list[_Segment], window: int, gamma: float
) -> tuple[dict[str, CandidateIntervals], dict[str, FloatArray]]:
    """Every adaptive candidate's issued intervals over all test origins, and its normalised
    out-of-sample scores."""
    intervals: dict[str, CandidateIntervals] = {}
    oos: dict[str, FloatArray] = {}
    for point in _points(segments):
        for scale in SCALE_MODELS:
            if any(scale not in seg.test.sigmas for seg in segments):
                continue
            if point == GLOBAL_POINT and scale == NETWORK_SCALE:
                # Another network's scale: no one artifact could serve the pair.
                continue
            name = candidate_name(point, scale)
            halves = []
            for seg in segments:
                cal, test = seg.calibration, seg.test
                half, _ = adaptive_block(
                    calibration=(cal.actual, cal.points[point], cal.sigmas[scale]),
                    test=(test.actual, test.points[point], test.sigmas[scale]),
                    window=window,
                    gamma=gamma,
                )
                halves.append(half)
            center = np.vstack([seg.test.points[point] for seg in segments])
            sigma = np.vstack([seg.test.sigmas[scale] for seg in segments])
            actual = np.vstack([seg.test.actual for seg in segments])
            intervals[name] = CandidateIntervals(
                name=name, center=center, sigma=sigma, half=np.vstack(halves), levels=TRACKED_LEVELS
            )
            oos[name] = normalised_scores(actual, center, sigma)
    return intervals, oos


def _points(segments: list[_Segment]) -> tuple[str, ...]:
    """The point models every segment forecast: the base ones, and ``glstm`` when given."""
    extra = (GLOBAL_POINT,) if all(GLOBAL_POINT in seg.test.points for seg in segments) else ()
    return (*POINT_MODELS, *extra)


def _reference_blocks(segments: list[_Segment]) -> dict[str, CandidateIntervals]:
    """Split conformal on the LSTM's validation residuals (as served before), naive ± normal
    quantiles x sigma60, and naive ± Student-t quantiles x the GARCH-t sigma."""
    lstm_center = np.vstack([seg.test.points["lstm"] for seg in segments])
    naive_center = np.vstack([seg.test.points["naive"] for seg in segments])
    fixed = np.vstack(
        [
            split_conformal_half(
                seg.validation.actual - seg.validation.points["lstm"], seg.rows.size
            )
            for seg in segments
        ]
    )
    sigma60 = np.vstack([seg.test.sigmas["sigma60"] for seg in segments])
    garch = np.vstack([seg.test.sigmas["garch_t"] for seg in segments])
    garch_half = np.vstack(
        [parametric_half(seg.test.sigmas["garch_t"], "t", _garch_nu(seg.fit)) for seg in segments]
    )
    ones = np.ones_like(lstm_center)

    def make(
        name: str, center: FloatArray, sigma: FloatArray, half: FloatArray
    ) -> CandidateIntervals:
        return CandidateIntervals(
            name=name, center=center, sigma=sigma, half=half, levels=TRACKED_LEVELS
        )

    return {
        "lstm+fixed": make("lstm+fixed", lstm_center, ones, fixed),
        "naive+sigma60": make(
            "naive+sigma60", naive_center, sigma60, parametric_half(sigma60, "normal")
        ),
        "naive+garch_t_parametric": make(
            "naive+garch_t_parametric", naive_center, garch, garch_half
        ),
    }


def _garch_nu(fit: _FoldFit) -> float | None:
    params = fit.fold.garch.get("params") if fit.fold.garch else None
    return None if params is None else float(params["nu"])


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
        lookback=model_config.lookback,
        horizon=horizon,
        val_fraction=train_config.val_fraction,
        cal_fraction=train_config.calibration_fraction,
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


def _segments(
    bars: pd.DataFrame, blocks: list[IndexArray], options: _FoldOptions, refit: bool
) -> tuple[list[_Segment], list[Fold]]:
    """Fit per fold (or once) and forecast each fit's calibration, validation and test rows."""
    horizon = options.configs[0].horizon
    fits: list[_FoldFit] = []
    folds: list[Fold] = []
    groups: list[tuple[_FoldFit, IndexArray]] = []
    for index, block in enumerate(blocks):
        if index > 0 and not refit:
            folds.append(_reuse_fold(bars, block, index, fits[0]))
            fit, rows = groups[-1]
            groups[-1] = (fit, np.concatenate([rows, block]))
            continue
        fits.append(_fit_fold(bars, block, index, options, fits[-1] if fits else None))
        folds.append(fits[-1].fold)
        groups.append((fits[-1], block))
    segments = [
        _Segment(
            fit=fit,
            rows=rows,
            test=_predict_part(bars, fit, rows, horizon),
            calibration=_predict_part(bars, fit, fit.lstm.calibration_rows(), horizon),
            validation=_predict_part(bars, fit, fit.lstm.validation_rows(), horizon),
        )
        for fit, rows in groups
    ]
    return segments, folds


def _latency(bars: pd.DataFrame, segments: list[_Segment]) -> dict[str, Any]:
    """The LSTM forecasting one origin at a time, as the service does, with hardware sampled."""
    from forecasting.evaluation import json_number
    from forecasting.hardware import HardwareMonitor

    latencies: list[float] = []
    with HardwareMonitor(interval_s=0.05) as monitor:
        for seg in segments:
            for row in seg.rows:
                started = time.perf_counter()
                seg.fit.lstm.predict_distribution(bars, [int(row)])
                latencies.append((time.perf_counter() - started) * 1000.0)
    hardware = monitor.summary()
    return {
        "lstm_latency_ms_median": statistics.median(latencies),
        "lstm_latency_ms_p95": float(np.percentile(latencies, 95)),
        "forecasts": len(latencies),
        "hardware": {
            key: None if value is None else json_number(float(value))
            for key, value in hardware.items()
        },
    }


def _context(
    bars: pd.DataFrame, segments: list[_Segment], blocks: list[IndexArray]
) -> ScoringContext:
    from forecasting.evaluation import ScoringContext
    from forecasting.scores import terciles

    closes = bars["close"].to_numpy(dtype=np.float64)
    origins = np.concatenate(blocks)
    # The volatility terciles are fixed for every candidate: the EWMA sigma at the origin.
    ewma = np.concatenate([seg.test.sigmas["ewma"][:, 0] for seg in segments])
    return ScoringContext(
        actual=np.vstack([seg.test.actual for seg in segments]),
        last_close=closes[origins],
        mase_scale=np.vstack([np.tile(seg.fit.mase_scale, (seg.rows.size, 1)) for seg in segments]),
        fold_of_origin=np.concatenate(
            [np.full(b.size, k, dtype=np.int64) for k, b in enumerate(blocks)]
        ),
        tercile_of_origin=terciles(ewma),
    )


def walk_forward(
    bars: pd.DataFrame,
    *,
    model_config: ModelConfig,
    train_config: TrainConfig,
    backtest_config: BacktestConfig,
    champion: ModelArtifact | None = None,
    policy: PromotionPolicy | str = PromotionPolicy.EVIDENCE,
    window: int = DEFAULT_WINDOW,
    gamma: float = DEFAULT_GAMMA,
    global_candidate: GlobalCandidate | None = None,
    warm_epochs: int | None = None,
) -> BacktestReport:
    """Backtest every candidate of ``model_config`` trained with ``train_config`` on validated
    ``bars`` and decide, under ``policy``, which one the gate would serve.

    The champion artifact, when given, is scored as it is (not refitted) on the same origins; the
    gate judges it only on the origins after its own training data (``champion_info`` counts
    both kinds). ``global_candidate`` adds the global LSTM (point model ``glstm``); with
    ``warm_epochs`` each fold after the first fine-tunes the previous fold's networks."""
    from forecasting.validation import clean_bars

    bars = clean_bars(bars)
    horizon = model_config.horizon
    blocks = _blocks(len(bars), model_config, train_config, backtest_config)
    options = _FoldOptions(
        configs=(model_config, train_config),
        global_candidate=global_candidate,
        warm_epochs=warm_epochs,
    )
    segments, folds = _segments(bars, blocks, options, backtest_config.refit)
    origins = np.concatenate(blocks)
    candidates, oos = _candidate_blocks(segments, window, gamma)
    references = _reference_blocks(segments)
    champion_scoring, champion_info = score_champion(champion, bars, origins, horizon)
    points = {
        point: np.vstack([seg.test.points[point] for seg in segments])
        for point in _points(segments)
    }
    if champion_scoring is not None:
        points["champion"] = champion_scoring.center
    members = _members(bars, segments)
    return _assemble(
        bars=bars,
        origins=origins,
        segments=segments,
        blocks=blocks,
        folds=folds,
        points=points,
        candidates=candidates,
        references=references,
        oos=oos,
        members=members,
        champion=(champion_scoring, champion_info),
        policy=policy,
        settings={
            "model": model_config.to_dict(),
            "train": train_config.to_dict(),
            "backtest": backtest_config.to_dict(),
            "calibration": {"window": window, "gamma": gamma, "levels": list(TRACKED_LEVELS)},
        },
    )


def _members(bars: pd.DataFrame, segments: list[_Segment]) -> FloatArray | None:
    """Each ensemble member's test locations (K, n, H), or None for a single network."""
    parts = [seg.fit.lstm.predictor.predict_members(bars, seg.rows) for seg in segments]
    if parts[0].shape[0] < 2:
        return None
    return np.concatenate(parts, axis=1)


def _assemble(
    *,
    bars: pd.DataFrame,
    origins: IndexArray,
    segments: list[_Segment],
    blocks: list[IndexArray],
    folds: list[Fold],
    points: dict[str, FloatArray],
    candidates: dict[str, CandidateIntervals],
    references: dict[str, CandidateIntervals],
    oos: dict[str, FloatArray],
    members: FloatArray | None,
    champion: tuple[ChampionScoring | None, dict[str, Any] | None],
    policy: PromotionPolicy | str,
    settings: dict[str, Any],
) -> BacktestReport:
    """Score everything on the same origins, ask the gate, and keep the series for the plot."""
    from forecasting.report import score_all

    context = _context(bars, segments, blocks)
    scored = score_all(context, points, candidates, references, members)
    dates = bars["date"].iloc[origins]
    scoring, champion_info = champion
    evidence = GateEvidence(
        horizon=context.horizon,
        origin_dates=tuple(pd.Timestamp(d).date() for d in dates),
        point_losses={
            p: scored.point_losses[p] for p in (*POINT_MODELS, GLOBAL_POINT) if p in points
        },
        interval_losses=scored.interval_losses,
        kupiec_min_p=scored.kupiec_min_p,
        champion=None
        if scoring is None
        else ChampionEvidence(
            data_end=scoring.data_end,
            point=scoring.point,
            point_losses=scored.point_losses["champion"],
            interval_losses=scoring.interval_losses,
        ),
    )
    decision = decide(evidence, policy)
    logger.info("backtest gate: %s", decision.reason)
    return BacktestReport(
        horizon=context.horizon,
        scores=scored.points,
        candidates=scored.candidates,
        references=scored.references,
        decision=decision,
        folds=tuple(folds),
        windows=int(origins.size),
        config=settings,
        inference=_latency(bars, segments),
        champion=champion_info,
        seeds=scored.seeds,
        series=_series(
            bars=bars,
            origins=origins,
            context=context,
            points=points,
            intervals={**candidates, **references},
            oos=oos,
        ),
    )


def _series(
    *,
    bars: pd.DataFrame,
    origins: IndexArray,
    context: ScoringContext,
    points: Mapping[str, FloatArray],
    intervals: Mapping[str, CandidateIntervals],
    oos: dict[str, FloatArray],
) -> BacktestSeries:
    base = context.last_close[:, None]
    lower: dict[str, dict[float, FloatArray]] = {}
    upper: dict[str, dict[float, FloatArray]] = {}
    for name, candidate in intervals.items():
        bounds = {level: candidate.bounds(level) for level in INTERVAL_LEVELS}
        with np.errstate(over="ignore"):
            lower[name] = {level: base * np.exp(lo) for level, (lo, _) in bounds.items()}
            upper[name] = {level: base * np.exp(hi) for level, (_, hi) in bounds.items()}
    horizon = context.horizon
    return BacktestSeries(
        origin_dates=tuple(pd.Timestamp(d) for d in bars["date"].iloc[origins]),
        target_dates=bars["date"].to_numpy()[origins[:, None] + np.arange(1, horizon + 1)],
        last_close=context.last_close,
        actual=base * np.exp(context.actual),
        predicted={name: base * np.exp(center) for name, center in points.items()},
        lower=lower,
        upper=upper,
        fold_of_origin=context.fold_of_origin,
        scores=oos,
    )
