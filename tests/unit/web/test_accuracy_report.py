"""Realised accuracy, on rows worked out by hand."""

from __future__ import annotations

import math
from datetime import date

import pytest

from web.services.accuracy import Grouping, _Scored, build_report


def _row(
    kind: str,
    day: date,
    actual: float,
    point: float,
    naive: float,
    *,
    lower: float = -math.inf,
    upper: float = math.inf,
) -> _Scored:
    return _Scored(
        model_kind=kind,
        target_date=day,
        actual=actual,
        point=point,
        naive=naive,
        last_close=naive,
        lower_80=lower,
        upper_80=upper,
        lower_95=-math.inf,
        upper_95=math.inf,
    )


ROWS = [
    _row("lstm", date(2025, 1, 30), actual=10.0, point=11.0, naive=9.0, lower=10.5, upper=11.5),
    _row("lstm", date(2025, 2, 3), actual=12.0, point=12.0, naive=10.0, lower=11.0, upper=13.0),
    _row("naive", date(2025, 2, 4), actual=5.0, point=6.0, naive=6.0),
]


def test_overall_per_model_kind() -> None:
    report = build_report("DIS", ROWS, grouping=Grouping.MONTH, recent_days=30)
    lstm, naive = report.overall
    assert (lstm.model_kind, lstm.count, naive.model_kind, naive.count) == ("lstm", 2, "naive", 1)
    assert lstm.mae == pytest.approx(0.5)  # errors 1 and 0
    assert lstm.naive_mae == pytest.approx(1.5)  # errors 1 and 2
    assert lstm.relative_mae == pytest.approx(1 / 3)
    assert lstm.rmse == pytest.approx(math.sqrt(0.5))
    assert lstm.theil_u2 == pytest.approx(math.sqrt(0.5) / math.sqrt(2.5))
    assert lstm.coverage_80 == pytest.approx(0.5)  # 10 is outside [10.5, 11.5]
    assert lstm.coverage_95 == pytest.approx(1.0)  # unbounded intervals hold everything
    assert lstm.mape == pytest.approx(100 * (0.1 + 0.0) / 2)
    # From 9 the model said up and it went up; from 10 it said up (12) and it went up (12).
    assert lstm.directional_accuracy == pytest.approx(1.0)
    # The naive forecast is its own baseline: relative skill exactly 1, no direction called.
    assert naive.relative_mae == pytest.approx(1.0)
    assert naive.directional_accuracy == pytest.approx(0.5)


def test_periods_and_recent_window() -> None:
    monthly = build_report("DIS", ROWS, grouping=Grouping.MONTH, recent_days=2)
    assert [(g.model_kind, g.period, g.count) for g in monthly.periods] == [
        ("lstm", "2025-01", 1),
        ("lstm", "2025-02", 1),
        ("naive", "2025-02", 1),
    ]
    # The two days up to the last evaluated target (2025-02-04): the 3rd and the 4th.
    assert [(g.model_kind, g.count) for g in monthly.recent] == [("lstm", 1), ("naive", 1)]
    weekly = build_report("DIS", ROWS, grouping=Grouping.WEEK, recent_days=30)
    assert [g.period for g in weekly.periods] == ["2025-W05", "2025-W06", "2025-W06"]


def test_a_perfect_naive_baseline_leaves_relative_skill_undefined() -> None:
    rows = [_row("lstm", date(2025, 1, 2), actual=5.0, point=5.5, naive=5.0)]
    [group] = build_report("DIS", rows, grouping=Grouping.MONTH, recent_days=30).overall
    assert group.naive_mae == 0.0
    assert group.relative_mae is None
    assert group.theil_u2 is None


def test_no_rows_no_groups() -> None:
    report = build_report("DIS", [], grouping=Grouping.MONTH, recent_days=30)
    assert (report.evaluated, report.first_target_date, report.overall) == (0, None, [])
