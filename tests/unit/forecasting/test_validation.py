"""Bars validation: every bad row is named with its date and reason, and refused unless dropped."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.bars import read_bars_csv
from forecasting.sources import SAMPLE_DIRECTORY
from forecasting.validation import (
    BarProblem,
    BarsSchemaError,
    InvalidBarProblemError,
    InvalidBarsError,
    ValidationReport,
    clean_bars,
    validate_bars,
)

# Rows 0, 1, 4, 8 are good; every other row has exactly one fault of a different kind.
CRAFTED_CSV = """\
date,open,high,low,close,adj_close,volume
2024-01-02,10.0,10.5,9.8,10.2,,1000
2024-01-03,10.2,10.6,10.0,10.4,,1100
2024-01-04,10.4,10.3,10.1,10.2,,1200
2024-01-05,10.2,10.4,10.1,-10.3,,1300
2024-01-08,10.3,10.7,10.2,10.6,,1400
2024-01-09,10.6,10.8,10.7,10.5,,1500
2024-01-10,10.5,10.9,10.4,,,1600
2024-01-10,10.5,10.9,10.4,10.8,,1700
2024-01-11,10.8,11.0,10.6,10.9,,1800
2024-01-12,10.9,11.1,10.8,11.0,,-5
2024-01-09,11.0,11.2,10.9,11.1,,1900
"""


@pytest.fixture
def crafted(tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "BAD.csv"
    path.write_text(CRAFTED_CSV)
    return read_bars_csv(str(path))


def test_each_bad_row_is_reported_with_its_date_and_reason(crafted: pd.DataFrame) -> None:
    report = validate_bars(crafted)

    by_row: dict[int, list[tuple[date | None, str]]] = {}
    for problem in report.problems:
        by_row.setdefault(problem.row, []).append((problem.date, problem.reason))
    assert sorted(by_row) == [2, 3, 5, 6, 9, 10]
    assert report.rows == 11
    assert report.bad_row_count == 6
    assert not report.ok
    assert by_row == {
        2: [(date(2024, 1, 4), "high 10.3 below max(open, close) 10.4")],
        # A negative close also puts the low above min(open, close): both are named.
        3: [
            (date(2024, 1, 5), "non-positive close -10.3"),
            (date(2024, 1, 5), "low 10.1 above min(open, close) -10.3"),
        ],
        5: [(date(2024, 1, 9), "low 10.7 above min(open, close) 10.5")],
        6: [(date(2024, 1, 10), "missing close")],
        9: [(date(2024, 1, 12), "negative volume -5")],
        # Row 9 is bad, so row 10 is compared with the last good row before it.
        10: [(date(2024, 1, 9), "date out of order (before 2024-01-11 in row 8)")],
    }
    # Row 7 repeats row 6's date, but row 6 is bad, so row 7 is the one that stays: no duplicate.
    assert 7 not in by_row


def test_refused_by_default_with_the_report_attached(crafted: pd.DataFrame) -> None:
    with pytest.raises(InvalidBarsError) as caught:
        clean_bars(crafted)

    assert caught.value.report.bad_row_count == 6
    message = str(caught.value)
    assert "6 bad row(s) of 11" in message
    assert "row 2 (2024-01-04): high 10.3 below" in message
    assert "drop_bad=True" in message


def test_drop_bad_keeps_only_good_rows_and_logs_the_count(
    crafted: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="forecasting.validation"):
        cleaned = clean_bars(crafted, drop_bad=True)

    assert [d.date() for d in cleaned["date"]] == [
        date(2024, 1, 2),
        date(2024, 1, 3),
        date(2024, 1, 8),
        date(2024, 1, 10),
        date(2024, 1, 11),
    ]
    assert cleaned["volume"].tolist() == [1000, 1100, 1400, 1700, 1800]
    assert list(cleaned.index) == list(range(5))
    assert validate_bars(cleaned).ok
    assert any("dropped 6 bad row(s)" in record.getMessage() for record in caplog.records)


def test_duplicate_dates_and_several_faults_in_one_row() -> None:
    frame = read_bars_csv_text(
        "date,open,high,low,close,adj_close,volume\n"
        "2024-03-01,5,6,4,5.5,5.4,10\n"
        "2024-03-01,5,6,4,5.5,5.4,10\n"
        "2024-03-04,0,6,7,inf,-1,-1\n"
    )
    report = validate_bars(frame)

    reasons = [(p.row, p.reason) for p in report.problems]
    assert (1, "duplicate date (also row 0)") in reasons
    row_2 = {reason for row, reason in reasons if row == 2}
    assert row_2 == {
        "non-finite close inf",
        "non-positive open 0",
        "non-positive adj_close -1",
        "negative volume -1",
        "low 7 above min(open, close) 0",
        "high 6 below max(open, close) inf",
    }
    assert report.bad_rows == (1, 2)
    assert report.bad_row_count == 2


def test_summary_truncates_and_to_dict_is_json_ready(crafted: pd.DataFrame) -> None:
    report = validate_bars(crafted)

    assert report.summary(limit=2).endswith("and 5 more problem(s)")
    data = report.to_dict()
    assert len(data["problems"]) == 7
    assert data["bad_row_count"] == 6
    assert data["problems"][0] == {
        "row": 2,
        "date": "2024-01-04",
        "reason": "high 10.3 below max(open, close) 10.4",
    }


def test_nan_adj_close_is_allowed_and_real_prices_pass() -> None:
    bars = read_bars_csv(str(SAMPLE_DIRECTORY / "SPY.csv"))  # real prices, no adj_close

    report = validate_bars(bars)

    assert bars["adj_close"].isna().all()
    assert report.ok, report.summary()
    assert report.summary() == f"{len(bars)} rows, all valid"


def test_missing_columns_are_a_schema_error() -> None:
    frame = pd.DataFrame({"date": ["2024-01-02"], "close": [1.0]})

    with pytest.raises(BarsSchemaError, match="open, high, low, adj_close, volume"):
        validate_bars(frame)


def test_reports_and_problems_refuse_impossible_rows() -> None:
    with pytest.raises(InvalidBarProblemError):
        BarProblem(row=-1, date=None, reason="x")
    with pytest.raises(InvalidBarProblemError, match="row 3 is outside a report of 3 rows"):
        ValidationReport(rows=3, problems=(BarProblem(row=3, date=None, reason="x"),))


def read_bars_csv_text(text: str) -> pd.DataFrame:
    from io import StringIO

    return read_bars_csv(StringIO(text))


def test_float_rounding_on_the_envelope_is_tolerated_but_real_breaches_are_not() -> None:
    high = 15.059200000000001
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-05-01", "2024-05-02"]),
            "open": [15.0, 15.0],
            "high": [high, high],
            # Row 0: one rounding step above the high, as auto-adjusted Yahoo data has;
            # row 1: a millionth above it, which no rounding explains.
            "low": [14.9, 14.9],
            "close": [float(np.nextafter(high, 100.0)), high * (1 + 1e-6)],
            "adj_close": [float("nan"), float("nan")],
            "volume": [1.0, 1.0],
        }
    )

    report = validate_bars(frame)

    assert report.bad_rows == (1,)
    assert report.problems[0].reason.startswith("high 15.0592 below max(open, close)")
