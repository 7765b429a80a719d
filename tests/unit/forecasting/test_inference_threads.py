"""A served predictor runs on its own intra-op thread count in whichever thread calls it: OpenMP
keeps the count per OS thread, so a count set once at start-up does not reach the worker threads
that run the forecasts."""

from __future__ import annotations

import threading

import pandas as pd
import torch

from forecasting.model import LSTMForecaster
from forecasting.predictor import LSTMPredictor


def _in_a_new_thread(body: object) -> list[int]:
    seen: list[int] = []

    def run() -> None:
        torch.set_num_threads(2)  # what a fresh thread may start with on a multi-core host
        seen.append(torch.get_num_threads())
        body(seen)  # type: ignore[operator]

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return seen


def test_a_serving_predictor_sets_one_thread_in_the_thread_that_runs_it(
    fitted_lstm: LSTMForecaster, ko_bars: pd.DataFrame
) -> None:
    predictor = LSTMPredictor.from_artifact(fitted_lstm.to_artifact(symbol="KO"), threads=1)

    def forecast(seen: list[int]) -> None:
        predictor.predict(ko_bars)
        seen.append(torch.get_num_threads())

    assert _in_a_new_thread(forecast) == [2, 1]


def test_a_predictor_without_a_count_leaves_the_callers_setting(
    fitted_lstm: LSTMForecaster, ko_bars: pd.DataFrame
) -> None:
    predictor = LSTMPredictor.from_artifact(fitted_lstm.to_artifact(symbol="KO"))

    def forecast(seen: list[int]) -> None:
        predictor.predict(ko_bars)
        seen.append(torch.get_num_threads())

    assert _in_a_new_thread(forecast) == [2, 2]
