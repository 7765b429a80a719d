"""Ticker validation: Yahoo's suffixes and index carets pass, anything that could reach a path fails."""

from __future__ import annotations

import re

import pytest

from forecasting.symbols import (
    SYMBOL_INPUT_PATTERN,
    SYMBOL_MAX_LENGTH,
    InvalidSymbolError,
    normalize_symbol,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("AAPL", "AAPL"),
        ("brk-b", "BRK-B"),
        ("PETR4.SA", "PETR4.SA"),
        ("petr4.sa", "PETR4.SA"),
        ("0700.HK", "0700.HK"),
        ("BT-A.L", "BT-A.L"),
        ("^BVSP", "^BVSP"),
        ("^gspc", "^GSPC"),
        ("^TA125.TA", "^TA125.TA"),
        ("EURUSD=X", "EURUSD=X"),
        ("  KO ", "KO"),
        ("ABCDEFGHIJKLMNOP", "ABCDEFGHIJKLMNOP"),
        ("^ABCDEFGHIJKLMNO", "^ABCDEFGHIJKLMNO"),
    ],
)
def test_valid_symbols_are_upper_cased(given: str, expected: str) -> None:
    assert normalize_symbol(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "",
        "../KO",
        "..",
        "KO/..",
        "A..B",
        "PETR4..SA",
        "a/b",
        "a\\b",
        ".SA",
        "PETR4.",
        "BRK--B",
        "-KO",
        "^",
        "^^GSPC",
        "A^B",
        "KO SA",
        "KO\tSA",
        "KO\x00",
        "KO\x1b[31m",
        "KO\nKO",
        "AAPL.csv\x00",
        "ABCDEFGHIJKLMNOPQ",
        "^ABCDEFGHIJKLMNOP",
        "X" * 1000,
        "PETR4.ŞA",
        "\u0131BM",  # dotless i, which str.upper maps to I
        "KO;DROP",
        "KO%2F",
        "KO*",
    ],
)
def test_unsafe_or_malformed_symbols_are_refused(given: str) -> None:
    with pytest.raises(InvalidSymbolError, match="invalid symbol"):
        normalize_symbol(given)


def test_the_input_pattern_is_the_same_rule_in_either_case() -> None:
    for given in ("petr4.sa", "BRK-B", "^bvsp", "EurUsd=X"):
        assert re.fullmatch(SYMBOL_INPUT_PATTERN, given)
    for given in ("A..B", "../KO", "KO SA", "-KO", "PETR4.", "^"):
        assert not re.fullmatch(SYMBOL_INPUT_PATTERN, given)


def test_the_length_limit_is_the_published_one() -> None:
    assert SYMBOL_MAX_LENGTH == 16
    normalize_symbol("A" * SYMBOL_MAX_LENGTH)
    with pytest.raises(InvalidSymbolError):
        normalize_symbol("A" * (SYMBOL_MAX_LENGTH + 1))


def test_the_error_shows_a_long_value_cut_short() -> None:
    with pytest.raises(InvalidSymbolError) as caught:
        normalize_symbol("Z" * 100)
    assert caught.value.value == "Z" * 100
    assert "ZZZ..." in str(caught.value)
    assert len(str(caught.value)) < 250


def test_a_non_string_is_refused() -> None:
    with pytest.raises(InvalidSymbolError):
        normalize_symbol(42)  # type: ignore[arg-type]
