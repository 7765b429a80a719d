"""Checks every bars frame on entry, so bad rows are reported and refused, never silently trained on.

:func:`validate_bars` names each bad row (its position, its date and why it is bad);
:func:`clean_bars` is the gate the sources call: it refuses a frame with bad rows unless the caller
explicitly asks to drop them, and then says in the log how many went.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import numpy as np
import pandas as pd

from forecasting.bars import BAR_COLUMNS, PRICE_COLUMNS
from forecasting.errors import PortableError

logger = logging.getLogger("forecasting.validation")

#: Columns that must hold a finite value on every row (``adj_close`` may be NaN: many feeds have none).
REQUIRED_VALUE_COLUMNS: Final = (*PRICE_COLUMNS, "volume")

#: Relative slack for the low/high envelope. Adjusted feeds scale high and low by a ratio but take
#: the adjusted close as published, so a close can sit one float rounding step (~1e-16 relative)
#: outside [low, high]; real yfinance data does this on a dozen days per 20 years. A billionth is
#: far below any price tick, so every genuine violation is still caught.
ENVELOPE_TOLERANCE: Final = 1e-9


class BarsSchemaError(PortableError, ValueError):
    """The frame lacks bar columns, so no row can be checked at all."""

    def __init__(self, missing: tuple[str, ...]) -> None:
        super().__init__(f"bars frame lacks column(s) {', '.join(missing)}")
        self.missing = missing


class InvalidBarProblemError(PortableError, ValueError):
    """A :class:`BarProblem` or :class:`ValidationReport` that contradicts itself."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"invalid bar problem: {detail}")


@dataclass(frozen=True, kw_only=True)
class BarProblem:
    """One reason one row is unusable; a row with several faults yields several problems."""

    row: int
    date: date | None
    reason: str

    def __post_init__(self) -> None:
        if self.row < 0:
            raise InvalidBarProblemError(f"row must be >= 0, got {self.row}")
        if not self.reason:
            raise InvalidBarProblemError("reason must not be empty")

    def describe(self) -> str:
        """``row 3 (2024-01-05): negative volume -5`` — what log lines and error messages show."""
        shown = self.date.isoformat() if self.date is not None else "no date"
        return f"row {self.row} ({shown}): {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "date": self.date.isoformat() if self.date is not None else None,
            "reason": self.reason,
        }


@dataclass(frozen=True, kw_only=True)
class ValidationReport:
    """The outcome of checking a frame of ``rows`` bars: every problem found, in row order."""

    rows: int
    problems: tuple[BarProblem, ...]

    def __post_init__(self) -> None:
        if self.rows < 0:
            raise InvalidBarProblemError(f"a report covers >= 0 rows, got {self.rows}")
        outside = [problem.row for problem in self.problems if problem.row >= self.rows]
        if outside:
            raise InvalidBarProblemError(
                f"row {outside[0]} is outside a report of {self.rows} rows"
            )

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_rows(self) -> tuple[int, ...]:
        """Positions of the rows with at least one problem, ascending."""
        return tuple(sorted({problem.row for problem in self.problems}))

    @property
    def bad_row_count(self) -> int:
        return len(self.bad_rows)

    def summary(self, limit: int = 5) -> str:
        """One line for logs and error messages: counts plus the first ``limit`` problems."""
        if self.ok:
            return f"{self.rows} rows, all valid"
        shown = "; ".join(problem.describe() for problem in self.problems[:limit])
        more = len(self.problems) - limit
        tail = f"; and {more} more problem(s)" if more > 0 else ""
        return f"{self.bad_row_count} bad row(s) of {self.rows}: {shown}{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ok": self.ok,
            "bad_row_count": self.bad_row_count,
            "problems": [problem.to_dict() for problem in self.problems],
        }


class InvalidBarsError(PortableError, ValueError):
    """A frame has bad rows and the caller did not ask to drop them; ``report`` says which and why."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(f"refusing bars with {report.summary()} (pass drop_bad=True to drop them)")
        self.report = report


def validate_bars(frame: pd.DataFrame) -> ValidationReport:
    """Check ``frame`` (a bars frame, see :mod:`forecasting.bars`) and report every bad row.

    Value checks come first: every price and the volume present and finite, prices > 0, volume >= 0,
    ``low <= min(open, close) <= max(open, close) <= high`` (within :data:`ENVELOPE_TOLERANCE`), and ``adj_close`` > 0 where present.
    Dates are then checked among the rows that passed: each must be later than the last good row
    before it, so duplicates and rows out of order are reported, and dropping every reported row
    always leaves a frame that validates.
    """
    missing = tuple(column for column in BAR_COLUMNS if column not in frame.columns)
    if missing:
        raise BarsSchemaError(missing)
    rows = len(frame)
    dates = pd.to_datetime(frame["date"]).reset_index(drop=True)
    found: list[tuple[int, str]] = []
    found.extend(_value_problems(frame))
    bad_value_rows = {row for row, _ in found}
    found.extend(_date_problems(dates, bad_value_rows))
    # A stable sort keeps each row's problems in the order they were checked.
    found.sort(key=lambda item: item[0])
    problems = tuple(
        BarProblem(row=row, date=_date_at(dates, row), reason=reason) for row, reason in found
    )
    return ValidationReport(rows=rows, problems=problems)


def clean_bars(frame: pd.DataFrame, *, drop_bad: bool = False) -> pd.DataFrame:
    """Return ``frame`` validated, with a fresh 0..n-1 index.

    Raises :class:`InvalidBarsError` if any row is bad, unless ``drop_bad`` is true: then the bad rows
    are dropped and a warning on the ``forecasting.validation`` logger says how many and why, because
    data that vanishes without a trace is how models end up trained on something nobody checked.
    """
    report = validate_bars(frame)
    if report.ok:
        return frame.reset_index(drop=True)
    if not drop_bad:
        raise InvalidBarsError(report)
    keep = np.ones(len(frame), dtype=bool)
    keep[list(report.bad_rows)] = False
    logger.warning("dropped %d bad row(s): %s", report.bad_row_count, report.summary())
    return frame.iloc[keep].reset_index(drop=True)


def _value_problems(frame: pd.DataFrame) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    values = {column: frame[column].to_numpy(dtype="float64") for column in BAR_COLUMNS[1:]}
    for column in REQUIRED_VALUE_COLUMNS:
        column_values = values[column]
        for row in np.flatnonzero(np.isnan(column_values)):
            found.append((int(row), f"missing {column}"))
        for row in np.flatnonzero(np.isinf(column_values)):
            found.append((int(row), f"non-finite {column} {column_values[row]}"))
    for column in (*PRICE_COLUMNS, "adj_close"):
        column_values = values[column]
        # NaN compares False, so missing values are not reported twice (and adj_close may be NaN).
        for row in np.flatnonzero(column_values <= 0):
            found.append((int(row), f"non-positive {column} {column_values[row]:g}"))
    volume = values["volume"]
    for row in np.flatnonzero(volume < 0):
        found.append((int(row), f"negative volume {volume[row]:g}"))
    open_, high, low, close = (values[column] for column in PRICE_COLUMNS)
    body_low = np.minimum(open_, close)
    body_high = np.maximum(open_, close)
    finite = np.isfinite(body_high)
    slack = ENVELOPE_TOLERANCE * np.abs(body_high, where=finite, out=np.zeros_like(body_high))
    for row in np.flatnonzero(low > body_low + slack):
        found.append((int(row), f"low {low[row]:g} above min(open, close) {body_low[row]:g}"))
    for row in np.flatnonzero(high < body_high - slack):
        found.append((int(row), f"high {high[row]:g} below max(open, close) {body_high[row]:g}"))
    return found


def _date_problems(dates: pd.Series[pd.Timestamp], skip: set[int]) -> list[tuple[int, str]]:
    values = dates.to_numpy()
    if values.dtype.kind == "M" and not np.isnat(values).any() and (np.diff(values) > 0).all():
        # Strictly increasing with no gap (every clean file): no problem, whatever is skipped.
        # The row-by-row walk below costs a Timestamp per row, 2-5 ms a file.
        return []
    found: list[tuple[int, str]] = []
    last_good: pd.Timestamp | None = None
    last_good_row = -1
    for row, value in enumerate(dates):
        if pd.isna(value):
            found.append((row, "missing date"))
            continue
        if row in skip:
            continue
        stamp = pd.Timestamp(value)
        if last_good is not None and stamp == last_good:
            found.append((row, f"duplicate date (also row {last_good_row})"))
            continue
        if last_good is not None and stamp < last_good:
            found.append(
                (row, f"date out of order (before {last_good.date()} in row {last_good_row})")
            )
            continue
        last_good, last_good_row = stamp, row
    return found


def _date_at(dates: pd.Series[pd.Timestamp], row: int) -> date | None:
    value = dates.iloc[row]
    if pd.isna(value):
        return None
    return pd.Timestamp(value).date()
