"""The README's table of supported exchanges says what the code does: every suffix and index ticker
it lists maps to the exchange, currency and time zone in that row, and none is left out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from forecasting.calendar import CalendarUnavailableError, exchange_timezone
from forecasting.exchanges import (
    EXCHANGE_CURRENCIES,
    INDEX_EXCHANGES,
    SUFFIX_EXCHANGES,
    infer_exchange,
)

README = Path(__file__).resolve().parents[3] / "README.md"
# Builds the calendar of every exchange in the table (about a second each).
pytestmark = pytest.mark.slow

HEADER = "| suffix | exchange | currency | time zone | index tickers |"


def _table_rows() -> list[list[str]]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADER) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _ticks(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_every_row_is_what_the_code_infers() -> None:
    rows = _table_rows()
    suffixes: set[str] = set()
    indices: set[str] = set()
    for suffix_cell, exchange, currency, zone, index_cell in rows:
        listed_suffixes = [] if suffix_cell.startswith("none") else _ticks(suffix_cell)
        for suffix in listed_suffixes:
            assert infer_exchange(f"ABC{suffix}") == exchange, suffix
        if suffix_cell.startswith("none"):
            for ticker in _ticks(suffix_cell):
                assert infer_exchange(ticker) == exchange
        for index in _ticks(index_cell):
            assert infer_exchange(index) == exchange, index
        assert EXCHANGE_CURRENCIES[exchange] == currency
        try:
            assert exchange_timezone(exchange).key == zone
        except CalendarUnavailableError:
            assert zone.startswith("—")
        suffixes.update(listed_suffixes)
        indices.update(_ticks(index_cell))
    # Nothing the code knows is missing from the table.
    assert suffixes == set(SUFFIX_EXCHANGES)
    assert indices == set(INDEX_EXCHANGES)
