"""Inference without Lightning or MLflow: the API process and the forecast job use this.

:class:`LSTMPredictor` rebuilds the plain torch network(s) from an artifact's metadata, loads the
safetensors weights strictly and runs them on CPU; its intervals come from the artifact's interval
recipe (a scale model and an adaptive calibration state), or, for artifacts made before those
existed, from the stored split-conformal half-widths. :class:`SimplePredictor` serves the naive or
drift forecast with volatility-adaptive intervals; :class:`NaivePredictor` is the fallback for a
symbol without a champion, calibrated on the symbol's own recent history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Self

import numpy as np
import pandas as pd

from forecasting.artifacts import InvalidArtifactError, ModelArtifact
from forecasting.candidates import IntervalRecipe, normalised_scores, point_forecasts
from forecasting.config import InvalidConfigError, ModelConfig
from forecasting.conformal import (
    TRACKED_LEVELS,
    CalibrationState,
    InvalidCalibrationStateError,
    run_adaptive,
)
from forecasting.forecast import (
    DEFAULT_EXCHANGE,
    INTERVAL_LEVELS,
    FloatArray,
    Forecast,
    IndexArray,
    build_forecast,
)
from forecasting.network import STUDENT_T_DF, LSTMNetwork, NetworkSpec
from forecasting.volatility import EwmaScale, ScaleModel, UnknownScaleError
from forecasting.windowing import (
    InsufficientDataError,
    WindowScalers,
    log_returns_ahead,
    model_inputs,
)

if TYPE_CHECKING:
    import torch


def limit_inference_threads(threads: int = 1) -> None:
    """Set torch's intra-op threads of the calling thread: one forecast is a 1 x lookback x
    features pass through a small LSTM, which extra intra-op threads only slow down, and spare
    cores are better left to the event loop and to training.

    OpenMP keeps this count per OS thread: set in one thread, it leaves every other thread on the
    default of one per core (measured: a forward pass beside a busy event loop took 11-26 ms
    instead of 0.37 ms, burning 1.9 cores). So every predictor sets it in the thread that runs
    it, at each forward pass (a cheap check when it is already right)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def quantiles_to_json(quantiles: Mapping[float, FloatArray]) -> dict[str, list[float]]:
    """Conformal half-widths keyed by level as a string ("0.8"), the JSON form in metadata."""
    return {str(level): [float(v) for v in values] for level, values in quantiles.items()}


def quantiles_from_json(data: Mapping[str, Sequence[float]]) -> dict[float, FloatArray]:
    return {float(level): np.asarray(values, dtype=np.float64) for level, values in data.items()}


def as_origins(origins: Sequence[int] | IndexArray) -> IndexArray:
    return np.asarray(origins, dtype=np.int64).reshape(-1)


def _member_prefix(index: int) -> str:
    return f"members.{index}."


class LSTMPredictor:
    """A fitted LSTM (one network, or an ensemble of networks trained with different seeds) ready
    to forecast: the networks in eval mode on CPU, their scalers, the split-conformal half-widths
    of the validation windows (``quantiles``, the reference intervals) and, when calibrated, the
    interval recipe it serves. Built by the trainer after a fit, or from an artifact."""

    model_kind: Final = "lstm"

    def __init__(
        self,
        *,
        networks: Sequence[LSTMNetwork],
        model_config: ModelConfig,
        scalers: WindowScalers,
        quantiles: Mapping[float, FloatArray],
        intervals: IntervalRecipe | None = None,
        threads: int | None = None,
    ) -> None:
        if not networks:
            raise ValueError("an LSTM predictor needs at least one network")
        self._threads = threads
        self._networks = tuple(network.cpu().eval() for network in networks)
        self._config = model_config
        self._scalers = scalers
        self._quantiles = dict(quantiles)
        self._intervals = intervals

    @classmethod
    def from_artifact(cls, artifact: ModelArtifact, *, threads: int | None = None) -> Self:
        """Rebuild the network(s) from the metadata and load the weights with ``strict=True``.
        With ``threads``, every forward pass runs on that many intra-op threads in whichever
        thread calls it (serving); None leaves the caller's setting (training's own backtests)."""
        metadata = artifact.metadata
        if metadata.get("model_kind") != "lstm":
            raise InvalidArtifactError(f"model_kind {metadata.get('model_kind')!r} is not 'lstm'")
        try:
            config = ModelConfig.from_dict(metadata["model_config"])
            spec = NetworkSpec.from_dict(metadata["network"])
            members = int(metadata["network"].get("members", 1))
            scalers = WindowScalers.from_dict(metadata["scalers"])
            quantiles = quantiles_from_json(metadata["conformal"])
            raw_intervals = metadata.get("intervals")
            intervals = None if raw_intervals is None else IntervalRecipe.from_dict(raw_intervals)
        except (
            KeyError,
            TypeError,
            ValueError,
            InvalidConfigError,
            InvalidCalibrationStateError,
            UnknownScaleError,
        ) as exc:
            raise InvalidArtifactError(f"unreadable metadata ({exc})") from None
        networks = _load_networks(artifact.weights, spec, members)
        return cls(
            networks=networks,
            model_config=config,
            scalers=scalers,
            quantiles=quantiles,
            intervals=intervals,
            threads=threads,
        )

    def with_intervals(self, intervals: IntervalRecipe) -> LSTMPredictor:
        """The same networks serving ``intervals``."""
        return LSTMPredictor(
            networks=self._networks,
            model_config=self._config,
            scalers=self._scalers,
            quantiles=self._quantiles,
            intervals=intervals,
            threads=self._threads,
        )

    @property
    def networks(self) -> tuple[LSTMNetwork, ...]:
        return self._networks

    @property
    def spec(self) -> NetworkSpec:
        return self._networks[0].spec

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights to save: a single network's own names, or ``members.<i>.`` prefixes."""
        if len(self._networks) == 1:
            return dict(self._networks[0].state_dict())
        return {
            _member_prefix(i) + name: tensor
            for i, network in enumerate(self._networks)
            for name, tensor in network.state_dict().items()
        }

    @property
    def model_config(self) -> ModelConfig:
        return self._config

    @property
    def scalers(self) -> WindowScalers:
        return self._scalers

    @property
    def horizon(self) -> int:
        return self._config.horizon

    @property
    def quantiles(self) -> Mapping[float, FloatArray]:
        """Split-conformal half-widths of the validation windows (log returns, per step)."""
        return self._quantiles

    @property
    def intervals(self) -> IntervalRecipe | None:
        return self._intervals

    @property
    def min_rows(self) -> int:
        """Bars needed for one forecast: the lookback plus the close before it."""
        return self._config.lookback + 1

    def _member_outputs(
        self, bars: pd.DataFrame, wanted: IndexArray
    ) -> tuple[FloatArray, FloatArray | None]:
        """Every member's location (K, n, H) and, for a Student-t head, its standard deviation
        (K, n, H), both in log-return units."""
        import torch

        first = int(wanted.min()) - self._config.lookback
        last = int(wanted.max())
        if last >= len(bars):
            raise ValueError(f"origin {last} is past the last row of {len(bars)} bars")
        if first < 0:
            # The earliest origin lacks a full window of history before it.
            raise InsufficientDataError(
                needed=self.min_rows, got=int(wanted.min()) + 1, purpose="a forecast"
            )
        window = bars.iloc[first : last + 1]
        local = wanted - first
        inputs = torch.from_numpy(model_inputs(window, local, self._config, self._scalers))
        if self._threads is not None:
            limit_inference_threads(self._threads)
        with torch.inference_mode():
            outputs = [network(inputs).numpy().astype(np.float64) for network in self._networks]
        closes = window["close"].to_numpy(dtype=np.float64)[local]
        target = self._scalers.target
        if self.spec.head == "point":
            located = [_to_log_returns(o, closes, self._config, self._scalers) for o in outputs]
            return np.stack(located), None
        locations = np.stack([target.inverse(o[:, 0, :]) for o in outputs])
        t_std = np.sqrt(STUDENT_T_DF / (STUDENT_T_DF - 2.0))
        deviations = np.stack([o[:, 1, :] * np.asarray(target.scale) * t_std for o in outputs])
        return locations, deviations

    def predict_distribution(
        self, bars: pd.DataFrame, origins: Sequence[int] | IndexArray
    ) -> tuple[FloatArray, FloatArray | None]:
        """Location and standard deviation of the cumulative log returns at each origin row of
        ``bars``, shape (n, H) each; the standard deviation is None for a point head.

        An ensemble averages its members' locations; its standard deviation is the mixture's,
        ``sqrt(mean(sd_i^2 + loc_i^2) - mean(loc_i)^2)``. Only the rows the windows read are
        featurised, so one forecast costs the same whatever the length of ``bars``.
        """
        wanted = as_origins(origins)
        if wanted.size == 0:
            empty = np.empty((0, self.horizon))
            return empty, None if self.spec.head == "point" else empty
        locations, deviations = self._member_outputs(bars, wanted)
        location: FloatArray = locations.mean(axis=0)
        if deviations is None:
            return location, None
        second_moment = np.mean(deviations**2 + locations**2, axis=0)
        deviation: FloatArray = np.sqrt(np.maximum(second_moment - location**2, 1e-18))
        return location, deviation

    def predict_members(
        self, bars: pd.DataFrame, origins: Sequence[int] | IndexArray
    ) -> FloatArray:
        """Each ensemble member's location, shape (K, n, H): the seed spread."""
        wanted = as_origins(origins)
        return self._member_outputs(bars, wanted)[0]

    def predict_log_returns(
        self, bars: pd.DataFrame, origins: Sequence[int] | IndexArray
    ) -> FloatArray:
        """Cumulative log-return forecasts at the given origin rows of ``bars``, shape (n, H)."""
        return self.predict_distribution(bars, origins)[0]

    @property
    def served_kind(self) -> str:
        """What its forecasts are labelled: ``lstm``, or e.g. ``naive+lstm_t`` when the network
        serves a simple point forecast with its volatility."""
        recipe = self._intervals
        return "lstm" if recipe is None or recipe.point == "lstm" else recipe.name

    def _basis(
        self,
        bars: pd.DataFrame,
        recipe: IntervalRecipe,
        location: FloatArray,
        sigma: FloatArray | None,
    ) -> tuple[FloatArray, FloatArray]:
        """The served centre ``m`` and scale ``s`` (H,) of the forecast after the last bar."""
        center = (
            location
            if recipe.point == "lstm"
            else point_forecasts(recipe.point, 1, self.horizon, recipe.slope)[0]
        )
        if recipe.scale is None:
            if sigma is None:
                raise InvalidArtifactError("an lstm_t interval needs a Student-t head")
            return center, sigma
        closes = bars["close"].to_numpy(dtype=np.float64)
        return center, recipe.scale.sigma(closes, [len(bars) - 1], self.horizon)[0]

    def calibration_basis(self, bars: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
        """The centre and scale (H,) its intervals are ``m ± q s`` of, for the forecast after the
        last bar: what the online calibration needs to score the forecast once it matures."""
        recipe = self._intervals
        if recipe is None:
            raise InvalidArtifactError("this model has no adaptive interval recipe")
        location, sigma = self.predict_distribution(bars, [len(bars) - 1])
        return self._basis(bars, recipe, location[0], None if sigma is None else sigma[0])

    def predict_with_basis(
        self, bars: pd.DataFrame, *, exchange: str = DEFAULT_EXCHANGE
    ) -> tuple[Forecast, FloatArray, FloatArray]:
        """:meth:`predict` and :meth:`calibration_basis` from one pass of the networks: a served
        forecast needs both, and asking each ran every network (and the scale model) twice."""
        recipe = self._intervals
        if recipe is None:
            raise InvalidArtifactError("this model has no adaptive interval recipe")
        if len(bars) < self.min_rows:
            raise InsufficientDataError(needed=self.min_rows, got=len(bars), purpose="a forecast")
        location, sigma = self.predict_distribution(bars, [len(bars) - 1])
        center, scale = self._basis(bars, recipe, location[0], None if sigma is None else sigma[0])
        forecast = build_forecast(
            model_kind=self.served_kind,
            bars=bars,
            log_returns=center,
            quantiles=recipe.half_widths(scale),
            exchange=exchange,
        )
        return forecast, center, scale

    def predict(self, bars: pd.DataFrame, *, exchange: str = DEFAULT_EXCHANGE) -> Forecast:
        """The forecast after the last bar; ``bars`` must hold at least :attr:`min_rows` rows.
        The more history ``bars`` holds (a few hundred rows), the less the scale model's start-up
        value weighs in its volatility forecast."""
        if self._intervals is not None:
            return self.predict_with_basis(bars, exchange=exchange)[0]
        if len(bars) < self.min_rows:
            raise InsufficientDataError(needed=self.min_rows, got=len(bars), purpose="a forecast")
        location, _ = self.predict_distribution(bars, [len(bars) - 1])
        return build_forecast(
            model_kind=self.served_kind,
            bars=bars,
            log_returns=location[0],
            quantiles=dict(self._quantiles),
            exchange=exchange,
        )


def _to_log_returns(
    outputs: FloatArray, closes: FloatArray, config: ModelConfig, scalers: WindowScalers
) -> FloatArray:
    from forecasting.windowing import outputs_to_log_returns

    return outputs_to_log_returns(outputs, closes, config, scalers)


def _load_networks(weights: bytes, spec: NetworkSpec, members: int) -> list[LSTMNetwork]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        state = load(weights)
    except (SafetensorError, ValueError) as exc:
        raise InvalidArtifactError(f"unreadable weights ({exc})") from None
    if members < 1:
        raise InvalidArtifactError(f"network.members must be at least 1, got {members}")
    parts: list[dict[str, torch.Tensor]] = []
    if members == 1:
        parts.append(state)
    else:
        for i in range(members):
            prefix = _member_prefix(i)
            parts.append({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        leftover = [k for k in state if not k.startswith("members.")]
        if leftover:
            raise InvalidArtifactError(f"weights do not match the ensemble ({leftover[0]})")
    networks = []
    for part in parts:
        network = LSTMNetwork(spec)
        try:
            network.load_state_dict(part, strict=True)
        except RuntimeError as exc:
            raise InvalidArtifactError(f"weights do not match the network ({exc})") from None
        networks.append(network)
    return networks


class SimplePredictor:
    """The naive (``c``) or drift (``c * exp(h * slope)``) forecast with volatility-adaptive
    intervals from ``intervals``; no network, no torch."""

    def __init__(
        self, *, point: str, horizon: int, intervals: IntervalRecipe, slope: float = 0.0
    ) -> None:
        if point not in ("naive", "drift"):
            raise ValueError(f"a simple predictor is naive or drift, not {point!r}")
        if intervals.scale is None:
            raise ValueError("a simple predictor needs a scale model computed from prices")
        self._point = point
        self._horizon = horizon
        self._intervals = intervals
        self._slope = slope if point == "drift" else 0.0

    @classmethod
    def from_serving(cls, serving: Mapping[str, Any], horizon: int) -> SimplePredictor:
        """The simple candidate an artifact's ``serving`` block selected (see
        :func:`forecasting.serving.serving_metadata`)."""
        try:
            recipe = IntervalRecipe.from_dict(serving["intervals"])
            return cls(point=recipe.point, horizon=horizon, intervals=recipe, slope=recipe.slope)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArtifactError(f"unreadable serving block ({exc})") from None

    @property
    def model_kind(self) -> str:
        """The candidate served (``drift+garch_t``): a simple point with the volatility model the
        gate chose; the bare ``naive`` is the no-model fallback's label."""
        return self._intervals.name

    @property
    def horizon(self) -> int:
        return self._horizon

    @property
    def intervals(self) -> IntervalRecipe:
        return self._intervals

    @property
    def quantiles(self) -> Mapping[float, FloatArray]:
        """Normalised half-widths (multiply by the scale forecast for log-return units)."""
        return self._intervals.state.half_widths()

    def predict_log_returns(
        self, bars: pd.DataFrame, origins: Sequence[int] | IndexArray
    ) -> FloatArray:
        return point_forecasts(self._point, as_origins(origins).size, self._horizon, self._slope)

    def calibration_basis(self, bars: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
        """The centre and scale (H,) of the forecast after the last bar: the scale model runs
        over every stored close up to it, so a volatility shock in them widens the interval."""
        if len(bars) < 2:
            raise InsufficientDataError(needed=2, got=len(bars), purpose="a forecast")
        scale: ScaleModel = self._intervals.scale  # type: ignore[assignment]
        closes = bars["close"].to_numpy(dtype=np.float64)
        sigma = scale.sigma(closes, [len(bars) - 1], self._horizon)[0]
        return self.predict_log_returns(bars, [len(bars) - 1])[0], sigma

    def predict_with_basis(
        self, bars: pd.DataFrame, *, exchange: str = DEFAULT_EXCHANGE
    ) -> tuple[Forecast, FloatArray, FloatArray]:
        """:meth:`predict` and the :meth:`calibration_basis` it was built from."""
        center, sigma = self.calibration_basis(bars)
        forecast = build_forecast(
            model_kind=self.model_kind,
            bars=bars,
            log_returns=center,
            quantiles=self._intervals.half_widths(sigma),
            exchange=exchange,
        )
        return forecast, center, sigma

    def predict(self, bars: pd.DataFrame, *, exchange: str = DEFAULT_EXCHANGE) -> Forecast:
        return self.predict_with_basis(bars, exchange=exchange)[0]


class NaivePredictor(SimplePredictor):
    """Tomorrow's close = today's close, with EWMA-normalised adaptive conformal intervals
    calibrated on the symbol's own history: the first scores seed the state, and every later
    origin updates it as its outcome matured, exactly as the service's online calibration would
    have. With too little history for a 95% interval the bounds are infinite (null in JSON)."""

    #: Origins skipped at the start: the EWMA's start-up value reads the first 75 returns.
    _WARM_UP: Final = 75

    @property
    def model_kind(self) -> str:
        return "naive"

    def __init__(self, intervals: IntervalRecipe | None, horizon: int) -> None:
        self._unbounded = intervals is None
        recipe = intervals or IntervalRecipe(
            scale_kind="ewma",
            scale=EwmaScale(),
            state=CalibrationState.initial(np.zeros((1, horizon))),
            point="naive",
        )
        super().__init__(point="naive", horizon=horizon, intervals=recipe)

    @classmethod
    def from_bars(cls, bars: pd.DataFrame, horizon: int) -> Self:
        closes = bars["close"].to_numpy(dtype=np.float64)
        last = closes.size - 1 - horizon
        first = min(cls._WARM_UP, max(1, last // 2))
        if last - first + 1 < 19:
            return cls(None, horizon)
        origins = np.arange(first, last + 1, dtype=np.int64)
        scale = EwmaScale()
        sigma = scale.sigma(closes, origins, horizon)
        scores = normalised_scores(log_returns_ahead(closes, origins, horizon), 0.0, sigma)
        seed = max(19, scores.shape[0] // 2)
        state = CalibrationState.initial(scores[:seed], levels=TRACKED_LEVELS)
        if seed < scores.shape[0]:
            _, state = run_adaptive(state, scores[seed:], drain=True)
        return cls(
            IntervalRecipe(scale_kind="ewma", scale=scale, state=state, point="naive"), horizon
        )

    @property
    def quantiles(self) -> Mapping[float, FloatArray]:
        if self._unbounded:
            return {level: np.full(self.horizon, np.inf) for level in INTERVAL_LEVELS}
        return super().quantiles

    def predict(self, bars: pd.DataFrame, *, exchange: str = DEFAULT_EXCHANGE) -> Forecast:
        if len(bars) < 1:
            raise InsufficientDataError(needed=1, got=0, purpose="a naive forecast")
        if self._unbounded or len(bars) < 2:
            return build_forecast(
                model_kind=self.model_kind,
                bars=bars,
                log_returns=np.zeros(self.horizon),
                quantiles={level: np.full(self.horizon, np.inf) for level in INTERVAL_LEVELS},
                exchange=exchange,
            )
        return super().predict(bars, exchange=exchange)
