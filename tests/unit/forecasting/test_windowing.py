"""Windowing: features, targets, the purged chronological split, and scalers that see the
training part only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecasting.config import ModelConfig
from forecasting.windowing import (
    MIN_VAL_WINDOWS,
    InsufficientDataError,
    Standardizer,
    WindowScalers,
    feature_matrix,
    log_returns_ahead,
    model_inputs,
    prepare_training_windows,
    required_rows,
    split_origins,
)

CONFIG = ModelConfig(lookback=10, horizon=3, hidden_size=8, num_layers=1)


def test_features_are_log_return_range_and_volume_change(ko_bars: pd.DataFrame) -> None:
    features = feature_matrix(ko_bars, ("log_return", "range", "volume"))
    close = ko_bars["close"].to_numpy()
    assert features.shape == (len(ko_bars), 3)
    assert np.isnan(features[0]).all()
    t = 17
    assert features[t, 0] == pytest.approx(np.log(close[t] / close[t - 1]), rel=1e-12)
    high, low = ko_bars["high"].to_numpy(), ko_bars["low"].to_numpy()
    assert features[t, 1] == pytest.approx((high[t] - low[t]) / close[t], rel=1e-12)
    volume = ko_bars["volume"].to_numpy()
    expected = np.log1p(volume[t]) - np.log1p(volume[t - 1])
    assert features[t, 2] == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(features[1:]).all()


def test_targets_are_cumulative_log_returns(ko_bars: pd.DataFrame) -> None:
    close = ko_bars["close"].to_numpy()
    origins = np.array([20, 21, 100])
    targets = log_returns_ahead(close, origins, 3)
    assert targets.shape == (3, 3)
    assert targets[2, 2] == pytest.approx(np.log(close[103] / close[100]), rel=1e-12)
    assert targets[0, 0] == pytest.approx(np.log(close[21] / close[20]), rel=1e-12)


def test_split_is_chronological_with_a_purge_gap_so_targets_never_overlap() -> None:
    split = split_origins(400, lookback=10, horizon=5, val_fraction=0.15)
    assert split.train[0] == 10  # the first origin with a full window of features
    assert np.all(np.diff(split.train) == 1)
    assert np.all(np.diff(split.validation) == 1)
    assert split.purge == 4
    # The last training target ends at the close of the first validation origin, not later.
    assert split.train[-1] + 5 == split.validation[0]
    # Every validation target is complete inside the data.
    assert split.validation[-1] + 5 == 399
    assert split.validation.size == int(np.ceil((400 - 10 - 5) * 0.15))


def test_a_calibration_split_comes_last_behind_a_second_purge_gap() -> None:
    split = split_origins(400, lookback=10, horizon=5, val_fraction=0.15, cal_fraction=0.15)
    assert split.train[-1] + 5 == split.validation[0]
    # no validation target overlaps a calibration target either
    assert split.validation[-1] + 5 == split.calibration[0]
    assert split.calibration[-1] + 5 == 399
    assert split.calibration.size == split.validation.size == int(np.ceil(385 * 0.15))
    assert np.all(np.diff(split.calibration) == 1)
    without = split_origins(400, lookback=10, horizon=5, val_fraction=0.15)
    assert without.calibration.size == 0
    needed = required_rows(lookback=10, horizon=5, val_fraction=0.15, cal_fraction=0.15)
    assert needed > required_rows(lookback=10, horizon=5, val_fraction=0.15)
    small = split_origins(needed, lookback=10, horizon=5, val_fraction=0.15, cal_fraction=0.15)
    assert small.calibration.size >= 20


def test_too_little_data_names_the_rows_needed() -> None:
    needed = required_rows(lookback=60, horizon=5, val_fraction=0.15)
    split_origins(needed, lookback=60, horizon=5, val_fraction=0.15)  # exactly enough
    with pytest.raises(InsufficientDataError, match=f"at least {needed} rows") as info:
        split_origins(needed - 1, lookback=60, horizon=5, val_fraction=0.15)
    assert info.value.needed == needed
    assert info.value.got == needed - 1
    assert split_origins(needed, lookback=60, horizon=5, val_fraction=0.15).validation.size >= (
        MIN_VAL_WINDOWS
    )


def _perturbed(bars: pd.DataFrame, rows: slice, factor: float) -> pd.DataFrame:
    changed = bars.copy()
    for column in ("open", "high", "low", "close"):
        changed.loc[rows, column] = changed.loc[rows, column] * factor
    changed.loc[rows, "volume"] = changed.loc[rows, "volume"] * 3.0
    return changed


def test_scalers_ignore_validation_and_later_data(ko_bars: pd.DataFrame) -> None:
    """Leakage: the fitted statistics must not move when anything after the training part does."""
    original = prepare_training_windows(ko_bars, CONFIG, val_fraction=0.15)
    first_val = int(original.split.validation[0])
    changed = _perturbed(ko_bars, slice(first_val + 1, None), 1.7)
    again = prepare_training_windows(changed, CONFIG, val_fraction=0.15)
    assert again.scalers == original.scalers
    np.testing.assert_array_equal(again.train_inputs, original.train_inputs)
    np.testing.assert_array_equal(again.train_targets, original.train_targets)
    assert not np.array_equal(again.val_targets, original.val_targets)


def test_scalers_follow_the_training_data(ko_bars: pd.DataFrame) -> None:
    original = prepare_training_windows(ko_bars, CONFIG, val_fraction=0.15)
    changed = _perturbed(ko_bars, slice(50, 60), 1.3)
    again = prepare_training_windows(changed, CONFIG, val_fraction=0.15)
    assert again.scalers.features != original.scalers.features
    assert again.scalers.target != original.scalers.target


def test_training_windows_are_scaled_feature_rows_ending_at_the_origin(
    ko_bars: pd.DataFrame,
) -> None:
    windows = prepare_training_windows(ko_bars, CONFIG, val_fraction=0.15)
    scaled = windows.scalers.features.transform(feature_matrix(ko_bars, CONFIG.features))
    origin = int(windows.split.train[7])
    np.testing.assert_allclose(
        windows.train_inputs[7], scaled[origin - 9 : origin + 1].astype(np.float32)
    )
    assert windows.train_inputs.dtype == np.float32
    assert windows.train_inputs.shape[1:] == (10, 3)
    assert windows.train_targets.shape[1] == 3
    # Standardised on the training part: mean ~0 and std ~1 there.
    assert np.abs(windows.train_targets.mean(axis=0)).max() < 1e-5
    assert np.allclose(windows.train_targets.std(axis=0), 1.0, atol=1e-4)
    np.testing.assert_allclose(
        model_inputs(ko_bars, windows.split.train[7:8], CONFIG, windows.scalers)[0],
        windows.train_inputs[7],
    )


def test_scalers_round_trip_through_json_exactly(ko_bars: pd.DataFrame) -> None:
    scalers = prepare_training_windows(ko_bars, CONFIG, val_fraction=0.15).scalers
    restored = WindowScalers.from_dict(json.loads(json.dumps(scalers.to_dict())))
    assert restored == scalers


def test_standardizer_refuses_bad_statistics() -> None:
    with pytest.raises(ValueError, match="positive"):
        Standardizer(mean=(0.0,), scale=(0.0,))
    with pytest.raises(ValueError, match="finite"):
        Standardizer(mean=(float("nan"),), scale=(1.0,))
    constant = Standardizer.fit(np.ones((5, 1)))
    assert np.isfinite(constant.transform(np.ones((2, 1)))).all()


def test_price_target_is_scaled_close_levels(ko_bars: pd.DataFrame) -> None:
    config = ModelConfig(
        lookback=10, horizon=3, features=("log_return", "close"), target="price", hidden_size=4
    )
    windows = prepare_training_windows(ko_bars, config, val_fraction=0.15)
    target = windows.scalers.target
    assert len(set(target.mean)) == 1  # one level scale shared by every step
    close = ko_bars["close"].to_numpy()
    origin = int(windows.split.train[0])
    restored = target.inverse(windows.train_targets[:1].astype(np.float64))[0]
    np.testing.assert_allclose(restored, close[origin + 1 : origin + 4], rtol=1e-5)
