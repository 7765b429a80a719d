"""Exchange knowledge: inference from Yahoo tickers, validation of explicit codes, currencies."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import exchange_calendars
import pytest

from forecasting.calendar import CalendarUnavailableError, exchange_timezone, is_trading_day
from forecasting.exchanges import (
    CALENDAR_STAND_INS,
    EXCHANGE_CURRENCIES,
    INDEX_EXCHANGES,
    MAPPED_EXCHANGES,
    SUFFIX_EXCHANGES,
    ExchangeInferenceError,
    UnknownExchangeError,
    UnknownIndexError,
    UnknownSuffixError,
    calendar_name,
    exchange_currency,
    infer_exchange,
    known_exchanges,
    resolve_exchange,
    ticker_suffix,
    validate_exchange,
)
from forecasting.symbols import InvalidSymbolError


@pytest.mark.parametrize(
    ("symbol", "exchange"),
    [
        ("PETR4.SA", "BVMF"),
        ("itub4.sa", "BVMF"),
        ("VOD.L", "XLON"),
        ("SHOP.TO", "XTSE"),
        ("7203.T", "XTKS"),
        ("0700.HK", "XHKG"),
        ("SAP.DE", "XETR"),
        ("MC.PA", "XPAR"),
        ("BHP.AX", "XASX"),
        ("RELIANCE.NS", "XNSE"),
        ("500325.BO", "XBOM"),
        ("NESN.SW", "XSWX"),
        ("005930.KS", "XKRX"),
        ("BT-A.L", "XLON"),
        ("^BVSP", "BVMF"),
        ("^FTSE", "XLON"),
        ("^N225", "XTKS"),
        ("^GSPC", "XNYS"),
        ("^TA125.TA", "XTAE"),
        ("TEVA.TA", "XTAE"),
        ("AAPL", "XNYS"),
        ("BRK-B", "XNYS"),
        ("SPY", "XNYS"),
    ],
)
def test_the_exchange_is_inferred_from_the_ticker(symbol: str, exchange: str) -> None:
    assert infer_exchange(symbol) == exchange
    assert resolve_exchange(symbol) == exchange


@pytest.mark.parametrize(
    ("symbol", "suffix"),
    [("FOO.XY", ".XY"), ("BRK.B", ".B"), ("EURUSD=X", "=X"), ("CL=F", "=F"), ("ABC.SZ", ".SZ")],
)
def test_an_unknown_suffix_is_an_error_that_says_so_never_new_york(
    symbol: str, suffix: str
) -> None:
    with pytest.raises(UnknownSuffixError) as caught:
        infer_exchange(symbol)

    message = str(caught.value)
    assert f"unknown ticker suffix {suffix!r} in {symbol!r}" in message
    assert "not taken to be New York" in message
    assert ".SA" in message
    assert caught.value.suffix == suffix
    assert isinstance(caught.value, ExchangeInferenceError)
    assert isinstance(caught.value, ValueError)


def test_a_share_class_written_with_a_dot_gets_a_hint() -> None:
    with pytest.raises(UnknownSuffixError, match=r"dash: BRK-B, not BRK\.B"):
        infer_exchange("BRK.B")


def test_an_unknown_index_is_an_error() -> None:
    with pytest.raises(UnknownIndexError, match=r"unknown index ticker '\^XYZ'.*\^BVSP"):
        infer_exchange("^xyz")


def test_an_invalid_ticker_is_refused_before_any_inference() -> None:
    with pytest.raises(InvalidSymbolError):
        infer_exchange("../PETR4.SA")


def test_ticker_suffix() -> None:
    assert ticker_suffix("PETR4.SA") == ".SA"
    assert ticker_suffix("BT-A.L") == ".L"
    assert ticker_suffix("EURUSD=X") == "=X"
    assert ticker_suffix("BRK-B") is None
    assert ticker_suffix("^GSPC") is None


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("BVMF", "BVMF"),
        ("bvmf", "BVMF"),
        (" XLON ", "XLON"),
        ("NYSE", "XNYS"),
        ("XNAS", "XNYS"),
        ("LSE", "XLON"),
        ("TSX", "XTSE"),
        ("XNSE", "XNSE"),
        ("nse", "XNSE"),
        ("XWAR", "XWAR"),
    ],
)
def test_explicit_codes_are_validated_and_made_canonical(given: str, canonical: str) -> None:
    assert validate_exchange(given) == canonical
    assert resolve_exchange("ANYTHING.XY", given) == canonical


@pytest.mark.parametrize("code", ["NOPE", "XXXX", "24/7", "us_futures", "", "X" * 100])
def test_an_unknown_code_is_an_error_naming_the_accepted_ones(code: str) -> None:
    with pytest.raises(UnknownExchangeError) as caught:
        validate_exchange(code)

    message = str(caught.value)
    assert "unknown exchange" in message
    for mapped in ("BVMF", "XLON", "XTSE", "XTKS", "XHKG", "XETR", "XPAR", "XASX", "XNSE", "XBOM"):
        assert mapped in message
    assert "exchange-calendars" in message
    assert "XWAR" in caught.value.accepted
    assert "XNSE" in caught.value.accepted
    assert len(message) < 500


def test_known_exchanges_are_exchange_calendars_mics_plus_the_stand_ins() -> None:
    known = known_exchanges()
    names = set(exchange_calendars.get_calendar_names(include_aliases=False))

    assert known == tuple(sorted(known))
    assert set(known) - names == set(CALENDAR_STAND_INS)
    assert "24/7" not in known
    assert {"XNYS", "BVMF", "XLON", "XTKS", "XNSE"} <= set(known)


def test_every_mapped_exchange_is_known_and_has_a_currency() -> None:
    known = set(known_exchanges())
    mapped = {*SUFFIX_EXCHANGES.values(), *INDEX_EXCHANGES.values()}

    assert set(MAPPED_EXCHANGES) == mapped | {"XNYS"}
    assert len(mapped) >= 40
    for exchange in mapped:
        assert exchange in known
        assert exchange_currency(exchange) is not None


@pytest.mark.parametrize("exchange", ["ASEX", "XTAE"])
def test_a_calendar_the_library_cannot_build_is_a_named_error(exchange: str) -> None:
    # exchange-calendars 4.13 under pandas 3 fails on Athens' Orthodox Easter and on Tel Aviv's
    # special closes. Whatever the library does, no raw library error escapes.
    outcome: ZoneInfo | CalendarUnavailableError
    try:
        outcome = exchange_timezone(exchange)
    except CalendarUnavailableError as error:
        outcome = error
    if isinstance(outcome, CalendarUnavailableError):
        assert outcome.exchange == exchange
        assert f"the trading calendar of {exchange} cannot be built here" in str(outcome)
    else:
        assert outcome.key in {"Europe/Athens", "Asia/Jerusalem", "Asia/Tel_Aviv"}


def test_every_known_exchange_but_one_has_a_currency() -> None:
    # A new exchange-calendars release that adds an exchange fails here until its currency is
    # added to the table (or, like AIXK's, documented as not one currency).
    missing = {code for code in known_exchanges() if exchange_currency(code) is None}
    assert missing == {"AIXK"}
    assert set(EXCHANGE_CURRENCIES) <= set(known_exchanges())


@pytest.mark.parametrize(
    ("exchange", "currency"),
    [
        ("BVMF", "BRL"),
        ("XLON", "GBP"),
        ("XTSE", "CAD"),
        ("XTKS", "JPY"),
        ("XHKG", "HKD"),
        ("XETR", "EUR"),
        ("XPAR", "EUR"),
        ("XASX", "AUD"),
        ("XNSE", "INR"),
        ("XBOM", "INR"),
        ("XNYS", "USD"),
        ("nyse", "USD"),
    ],
)
def test_currencies(exchange: str, currency: str) -> None:
    assert exchange_currency(exchange) == currency


def test_nse_is_served_by_the_bse_calendar_which_has_the_same_holidays() -> None:
    assert calendar_name("XNSE") == "XBOM"
    assert calendar_name("BVMF") == "BVMF"
    # Republic Day: both Indian exchanges shut, New York open.
    assert not is_trading_day(date(2024, 1, 26), "XNSE")
    assert is_trading_day(date(2024, 1, 26), "XNYS")
    assert exchange_timezone("XNSE").key == "Asia/Kolkata"
