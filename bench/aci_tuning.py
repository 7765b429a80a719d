"""Choose the ACI window W and step size gamma on simulated GARCH(1,1)-t series, before any real
series is scored, so the figures reported on real prices are not tuned on themselves.

    .venv/bin/python bench/aci_tuning.py [--reps 8] [--windows 100 250 500] [--gammas 0 0.005 0.02]

Each replication simulates 3,000 days: the scale models are fitted on the first 1,700 returns,
the last 300 origins before the test calibrate, and 1,000 test origins follow (horizon 5, naive
point forecast). Three scenarios: ``stationary`` (one GARCH-t process throughout), ``level``
(the unconditional variance triples half-way through the test: omega x 3) and ``tails``
(the errors' degrees of freedom fall from 8 to 3 half-way: heavier tails than calibrated).
Printed per (scale, W, gamma): pooled coverage at 80%/95%, the worst 100-origin rolling coverage
at 80% (step 1), the mean 95% interval score (log return x 100), averaged over replications.
"""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Any

import numpy as np

from forecasting.conformal import CalibrationState, run_adaptive
from forecasting.scores import interval_scores
from forecasting.volatility import EwmaScale, FixedScale, fit_garch_t

HORIZON = 5
FIT, CAL, TEST = 1700, 300, 1000


def simulate(
    rng: np.random.Generator, scenario: str, days: int = FIT + CAL + TEST + 10
) -> np.ndarray[Any, Any]:
    """Closes of a GARCH(1,1)-t process (daily vol ~1.2%), changed half-way through the test."""
    omega, alpha, beta = 0.02, 0.09, 0.89
    change = FIT + CAL + TEST // 2
    returns = np.empty(days)
    variance = omega / (1 - alpha - beta)
    for t in range(days):
        late = t >= change
        nu = 3.0 if scenario == "tails" and late else 8.0
        w = omega * 3.0 if scenario == "level" and late else omega
        shock = rng.standard_t(nu) * np.sqrt((nu - 2) / nu)
        returns[t] = np.sqrt(variance) * shock
        variance = w + alpha * returns[t] ** 2 + beta * variance
    return 100.0 * np.exp(np.cumsum(returns / 100.0))


def evaluate(
    closes: np.ndarray[Any, Any], scale: Any, window: int, gamma: float
) -> dict[str, float]:
    origins = np.arange(FIT + 1, FIT + CAL + TEST + 1)
    logs = np.log(closes)
    steps = origins[:, None] + np.arange(1, HORIZON + 1)
    actual = logs[steps] - logs[origins][:, None]
    sigma = scale.sigma(closes, origins, HORIZON)
    scores = np.abs(actual) / sigma
    state = CalibrationState.initial(scores[:CAL], window=window, gamma=gamma)
    issued, _ = run_adaptive(state, scores[CAL:])
    levels = list(state.levels)
    test_actual, test_sigma = actual[CAL:], sigma[CAL:]
    out: dict[str, float] = {}
    for level in (0.8, 0.95):
        half = issued[:, :, levels.index(level)] * test_sigma
        covered = np.abs(test_actual) <= half
        out[f"cov{int(level * 100)}"] = float(covered.mean())
        if level == 0.8:
            rolling = np.convolve(covered[:, 0].astype(float), np.ones(100) / 100, mode="valid")
            out["worst100"] = float(rolling.min())
            out["after_change"] = float(covered[TEST // 2 : TEST // 2 + 100, 0].mean())
        else:
            out["is95"] = float(
                np.mean(interval_scores(100 * test_actual, -100 * half, 100 * half, 0.95))
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--windows", type=int, nargs="+", default=[100, 250, 500])
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.0, 0.005, 0.01, 0.02])
    args = parser.parse_args()
    started = time.perf_counter()
    rows: dict[tuple[str, str, int, float], list[dict[str, float]]] = {}
    for scenario in ("stationary", "level", "tails"):
        for rep in range(args.reps):
            closes = simulate(np.random.default_rng(1000 * rep + 7), scenario)
            scales = {
                "ewma": EwmaScale(),
                "garch_t": fit_garch_t(closes[: FIT + 1]),
                "fixed": FixedScale(),
            }
            for (name, scale), window, gamma in itertools.product(
                scales.items(), args.windows, args.gammas
            ):
                rows.setdefault((scenario, name, window, gamma), []).append(
                    evaluate(closes, scale, window, gamma)
                )
    print(
        f"{'scenario':<11}{'scale':<9}{'W':>5}{'gamma':>7}{'cov80':>7}{'cov95':>7}"
        f"{'worst100':>9}{'after':>7}{'IS95':>7}"
    )
    for (scenario, name, window, gamma), results in rows.items():
        mean = {key: float(np.mean([r[key] for r in results])) for key in results[0]}
        print(
            f"{scenario:<11}{name:<9}{window:>5}{gamma:>7.3f}{mean['cov80']:>7.3f}"
            f"{mean['cov95']:>7.3f}{mean['worst100']:>9.3f}{mean['after_change']:>7.3f}"
            f"{mean['is95']:>7.3f}"
        )
    print(f"{args.reps} replications per scenario, {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
