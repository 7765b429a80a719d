"""The database's check constraints hold the same ranges as ``forecasting.limits``.

``db`` is a leaf and cannot import ``forecasting``, so its constraints repeat the ranges as
literals; this test is what keeps the two in step.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import CheckConstraint

from db.models import WatchedSymbol
from forecasting.limits import HORIZON, LOOKBACK, IntRange


def _ranges() -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for constraint in WatchedSymbol.__table__.constraints:
        if isinstance(constraint, CheckConstraint):
            match = re.fullmatch(r"(\w+) BETWEEN (\d+) AND (\d+)", str(constraint.sqltext))
            if match:
                found[match[1]] = (int(match[2]), int(match[3]))
    return found


@pytest.mark.parametrize(("column", "limits"), [("horizon", HORIZON), ("lookback", LOOKBACK)])
def test_check_constraints_match_the_forecasting_limits(column: str, limits: IntRange) -> None:
    assert _ranges()[column] == (limits.low, limits.high)
