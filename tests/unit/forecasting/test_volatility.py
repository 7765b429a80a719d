"""Scale models: the EWMA and sigma60 by hand, the GARCH(1,1)-t recursion held to arch's own
forecasts on the same fixed parameters, causality, the fit's fallbacks and the JSON round trip."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forecasting.bars import read_bars_csv
from forecasting.metrics import MetricInputError
from forecasting.sources import SAMPLE_DIRECTORY
from forecasting.volatility import (
    EwmaScale,
    FixedScale,
    GarchParams,
    GarchTScale,
    ShrunkEwmaScale,
    Sigma60Scale,
    UnknownScaleError,
    backcast,
    daily_log_returns,
    fit_garch_t,
    fit_scale,
    scale_from_dict,
)


@pytest.fixture(scope="module")
def spy_closes() -> np.ndarray[Any, Any]:
    """2,000 daily closes of the bundled SPY sample."""
    return read_bars_csv(str(SAMPLE_DIRECTORY / "SPY.csv"))["close"].to_numpy()[:2000]


def test_ewma_by_hand() -> None:
    closes = np.exp(np.cumsum([0.0, 0.01, -0.02, 0.03]))
    r = np.array([0.01, -0.02, 0.03])
    start = backcast(r)
    weights = 0.94 ** np.arange(3)
    assert start == pytest.approx(np.sum(weights * r**2) / weights.sum())
    v1 = 0.94 * start + 0.06 * r[0] ** 2
    v2 = 0.94 * v1 + 0.06 * r[1] ** 2
    sigma = EwmaScale().sigma(closes, [1, 2], 2)
    np.testing.assert_allclose(sigma[0], np.sqrt(v1 * np.array([1, 2])))
    np.testing.assert_allclose(sigma[1], np.sqrt(v2 * np.array([1, 2])))


def test_shrunk_ewma_is_halfway_between_the_ewma_and_the_long_run_variance(
    spy_closes: np.ndarray[Any, Any],
) -> None:
    fit = spy_closes[:1000]
    model = ShrunkEwmaScale.fit(fit)
    assert model.long_run_variance == pytest.approx(np.var(daily_log_returns(fit)))
    origins = np.array([1200, 1500])
    ewma = EwmaScale().sigma(spy_closes, origins, 2) ** 2
    expected = 0.5 * ewma + 0.5 * model.long_run_variance * np.array([1.0, 2.0])
    np.testing.assert_allclose(model.sigma(spy_closes, origins, 2) ** 2, expected, rtol=1e-12)
    with pytest.raises(MetricInputError, match="long_run_variance"):
        ShrunkEwmaScale(long_run_variance=0.0)


def test_sigma60_is_the_rolling_sample_deviation(spy_closes: np.ndarray[Any, Any]) -> None:
    origins = np.array([60, 61, 500, 1999])
    sigma = Sigma60Scale().sigma(spy_closes, origins, 3)
    returns = pd.Series(daily_log_returns(spy_closes))
    rolling = returns.rolling(60).std().to_numpy()
    np.testing.assert_allclose(sigma[:, 0], rolling[origins - 1], rtol=1e-9)
    np.testing.assert_allclose(sigma[:, 2], rolling[origins - 1] * math.sqrt(3), rtol=1e-9)


def test_garch_recursion_matches_arch_on_fixed_parameters(
    spy_closes: np.ndarray[Any, Any],
) -> None:
    from arch import arch_model

    model = fit_garch_t(spy_closes)
    assert model.params is not None and model.fallback is None
    p = model.params
    returns = daily_log_returns(spy_closes) * 100.0
    fixed = arch_model(returns, mean="Zero", vol="GARCH", p=1, q=1, dist="t", rescale=False).fix(
        [p.omega, p.alpha, p.beta, p.nu]
    )
    # arch's forecast at returns index i uses returns[: i + 1], i.e. closes up to row i + 1
    reference = fixed.forecast(horizon=5, start=100, reindex=False).variance.to_numpy()
    ours = model.sigma(spy_closes, np.arange(101, spy_closes.size), 5) ** 2 * 1e4
    np.testing.assert_allclose(ours, np.cumsum(reference, axis=1), rtol=1e-6)


def test_garch_fit_recovers_a_simulated_process() -> None:
    rng = np.random.default_rng(11)
    omega, alpha, beta, nu = 0.03, 0.08, 0.9, 7.0
    variance, returns = omega / (1 - alpha - beta), np.empty(4000)
    for t in range(returns.size):
        returns[t] = math.sqrt(variance) * rng.standard_t(nu) * math.sqrt((nu - 2) / nu)
        variance = omega + alpha * returns[t] ** 2 + beta * variance
    model = fit_garch_t(100.0 * np.exp(np.cumsum(returns / 100.0)))
    assert model.params is not None
    assert model.params.alpha + model.params.beta == pytest.approx(0.98, abs=0.02)
    assert model.params.nu == pytest.approx(7.0, abs=3.0)


def test_scales_are_causal(spy_closes: np.ndarray[Any, Any]) -> None:
    origins = np.arange(300, 400)
    changed = spy_closes.copy()
    changed[401:] *= np.exp(np.cumsum(np.full(changed.size - 401, 0.05)))
    garch = fit_garch_t(spy_closes[:301])
    for scale in (EwmaScale(), garch, Sigma60Scale()):
        before = scale.sigma(spy_closes, origins, 5)
        assert np.array_equal(before, scale.sigma(changed, origins, 5)), scale.kind
    assert not np.array_equal(
        EwmaScale().sigma(spy_closes, [450], 5), EwmaScale().sigma(changed, [450], 5)
    )


def test_a_garch_that_cannot_be_fitted_falls_back_to_ewma_and_says_why(
    spy_closes: np.ndarray[Any, Any],
) -> None:
    short = fit_garch_t(spy_closes[:100])
    assert short.params is None and short.fallback is not None and "fewer" in short.fallback
    np.testing.assert_array_equal(
        short.sigma(spy_closes, [150], 5), EwmaScale().sigma(spy_closes, [150], 5)
    )
    exploding = GarchParams(omega=0.01, alpha=0.2, beta=0.85, nu=5.0)
    assert exploding.problem() is not None and "explodes" in exploding.problem()  # type: ignore[operator]
    assert GarchParams(omega=0.01, alpha=0.1, beta=0.8, nu=1.5).problem() is not None


def test_every_scale_round_trips_through_json(spy_closes: np.ndarray[Any, Any]) -> None:
    for kind in ("ewma", "ewma_shrunk", "garch_t", "sigma60", "fixed"):
        model = fit_scale(kind, spy_closes)
        again = scale_from_dict(json.loads(json.dumps(model.to_dict())))
        assert again.to_dict() == model.to_dict()
        assert np.array_equal(
            again.sigma(spy_closes, [1500], 5), model.sigma(spy_closes, [1500], 5)
        )
    assert isinstance(scale_from_dict({"kind": "garch_t", "params": None}), GarchTScale)
    np.testing.assert_array_equal(FixedScale().sigma(spy_closes, [5, 6], 2), np.ones((2, 2)))


def test_bad_input_is_refused(spy_closes: np.ndarray[Any, Any]) -> None:
    with pytest.raises(UnknownScaleError, match="expected one of"):
        fit_scale("vix", spy_closes)
    with pytest.raises(UnknownScaleError):
        scale_from_dict({"kind": "vix"})
    with pytest.raises(MetricInputError, match="origins"):
        EwmaScale().sigma(spy_closes, [spy_closes.size], 5)
    with pytest.raises(MetricInputError, match="horizon"):
        EwmaScale().sigma(spy_closes, [10], 0)
    with pytest.raises(MetricInputError, match="positive"):
        EwmaScale().sigma(np.array([1.0, -1.0, 2.0]), [1], 1)
