"""Inference without Lightning or MLflow: the API process and the forecast job use this.

:class:`LSTMPredictor` rebuilds the plain torch network from an artifact's metadata, loads the
safetensors weights strictly and runs it on CPU; :class:`NaivePredictor` is the fallback forecast
for a symbol without a champion, with intervals from the naive model's own residuals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Self

import numpy as np
import pandas as pd

from forecasting.artifacts import InvalidArtifactError, ModelArtifact
from forecasting.config import InvalidConfigError, ModelConfig
from forecasting.forecast import (
    DEFAULT_EXCHANGE,
    FloatArray,
    Forecast,
    IndexArray,
    build_forecast,
)
from forecasting.network import LSTMNetwork, NetworkSpec
from forecasting.windowing import (
    InsufficientDataError,
    WindowScalers,
    model_inputs,
    outputs_to_log_returns,
)


def limit_inference_threads(threads: int = 1) -> None:
    """Call once at start-up of a process that only forecasts (the API): one forecast is a
    1 x lookback x features pass through a small LSTM, which extra intra-op threads only slow
    down, and spare cores are better left to the event loop and to training."""
    import torch

    torch.set_num_threads(threads)


def quantiles_to_json(quantiles: Mapping[float, FloatArray]) -> dict[str, list[float]]:
    """Conformal half-widths keyed by level as a string ("0.8"), the JSON form in metadata."""
    return {str(level): [float(v) for v in values] for level, values in quantiles.items()}


def quantiles_from_json(data: Mapping[str, Sequence[float]]) -> dict[float, FloatArray]:
    return {float(level): np.asarray(values, dtype=np.float64) for level, values in data.items()}


def as_origins(origins: Sequence[int] | IndexArray) -> IndexArray:
    return np.asarray(origins, dtype=np.int64).reshape(-1)


class LSTMPredictor:
    """A fitted LSTM ready to forecast: the network in eval mode on CPU, plus its scalers and
    conformal half-widths. Built by the trainer after a fit, or from an artifact."""

    model_kind: Final = "lstm"

    def __init__(
        self,
        *,
        network: LSTMNetwork,
        model_config: ModelConfig,
        scalers: WindowScalers,
        quantiles: Mapping[float, FloatArray],
    ) -> None:
        self._network = network.cpu().eval()
        self._config = model_config
        self._scalers = scalers
        self._quantiles = dict(quantiles)

    @classmethod
    def from_artifact(cls, artifact: ModelArtifact) -> Self:
        """Rebuild the network from the metadata and load the weights with ``strict=True``."""
        from safetensors import SafetensorError
        from safetensors.torch import load

        metadata = artifact.metadata
        if metadata.get("model_kind") != "lstm":
            raise InvalidArtifactError(f"model_kind {metadata.get('model_kind')!r} is not 'lstm'")
        try:
            config = ModelConfig.from_dict(metadata["model_config"])
            spec = NetworkSpec.from_dict(metadata["network"])
            scalers = WindowScalers.from_dict(metadata["scalers"])
            quantiles = quantiles_from_json(metadata["conformal"])
        except (KeyError, TypeError, ValueError, InvalidConfigError) as exc:
            raise InvalidArtifactError(f"unreadable metadata ({exc})") from None
        try:
            state = load(artifact.weights)
        except (SafetensorError, ValueError) as exc:
            raise InvalidArtifactError(f"unreadable weights ({exc})") from None
        network = LSTMNetwork(spec)
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise InvalidArtifactError(f"weights do not match the network ({exc})") from None
        return cls(network=network, model_config=config, scalers=scalers, quantiles=quantiles)

    @property
    def network(self) -> LSTMNetwork:
        return self._network

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
        return self._quantiles

    @property
    def min_rows(self) -> int:
        """Bars needed for one forecast: the lookback plus the close before it."""
        return self._config.lookback + 1

    def predict_log_returns(
        self, bars: pd.DataFrame, origins: Sequence[int] | IndexArray
    ) -> FloatArray:
        """Cumulative log-return forecasts at the given origin rows of ``bars``, shape (n, H).

        Only the rows the windows read are featurised, so one forecast costs the same whatever
        the length of ``bars``.
        """
        import torch

        wanted = as_origins(origins)
        if wanted.size == 0:
            return np.empty((0, self.horizon))
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
        inputs = model_inputs(window, local, self._config, self._scalers)
        with torch.inference_mode():
            outputs = self._network(torch.from_numpy(inputs)).numpy().astype(np.float64)
        closes = window["close"].to_numpy(dtype=np.float64)[local]
        return outputs_to_log_returns(outputs, closes, self._config, self._scalers)

    def predict(self, bars: pd.DataFrame, *, exchange: str = DEFAULT_EXCHANGE) -> Forecast:
        """The forecast after the last bar; ``bars`` must hold at least :attr:`min_rows` rows."""
        if len(bars) < self.min_rows:
            raise InsufficientDataError(needed=self.min_rows, got=len(bars), purpose="a forecast")
        returns = self.predict_log_returns(bars, [len(bars) - 1])[0]
        return build_forecast(
            model_kind=self.model_kind,
            bars=bars,
            log_returns=returns,
            quantiles=self._quantiles,
            exchange=exchange,
        )


class NaivePredictor:
    """Tomorrow's close = today's close, with intervals from the naive forecast's own errors.

    The service falls back to it for a symbol without a champion, so it needs little history:
    with too few rows for a 95% interval the bounds are infinite (null in JSON), never missing.
    """

    model_kind: Final = "naive"

    def __init__(self, quantiles: Mapping[float, FloatArray], horizon: int) -> None:
        self._quantiles = dict(quantiles)
        self._horizon = horizon

    @classmethod
    def from_bars(cls, bars: pd.DataFrame, horizon: int) -> Self:
        from forecasting.baselines import NaiveForecaster

        model = NaiveForecaster(horizon=horizon).fit(bars)
        return cls(model.quantiles, horizon)

    @property
    def horizon(self) -> int:
        return self._horizon

    @property
    def quantiles(self) -> Mapping[float, FloatArray]:
        return self._quantiles

    def predict_log_returns(
        self, bars: pd.DataFrame, origins: Sequence[int] | IndexArray
    ) -> FloatArray:
        return np.zeros((as_origins(origins).size, self._horizon))

    def predict(self, bars: pd.DataFrame, *, exchange: str = DEFAULT_EXCHANGE) -> Forecast:
        if len(bars) < 1:
            raise InsufficientDataError(needed=1, got=0, purpose="a naive forecast")
        return build_forecast(
            model_kind=self.model_kind,
            bars=bars,
            log_returns=np.zeros(self._horizon),
            quantiles=self._quantiles,
            exchange=exchange,
        )
