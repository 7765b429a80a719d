"""A symbol's listing (exchange, currency, time zone) and the differences a source can report."""

from __future__ import annotations

import pytest

from forecasting.exchanges import UnknownExchangeError, UnknownSuffixError
from forecasting.listings import (
    Listing,
    ListingDisagreement,
    ReportedListing,
    compare_listing,
    listing_of,
)


@pytest.mark.parametrize(
    ("symbol", "exchange", "expected"),
    [
        ("PETR4.SA", None, ("PETR4.SA", "BVMF", "BRL", "America/Sao_Paulo")),
        ("^bvsp", None, ("^BVSP", "BVMF", "BRL", "America/Sao_Paulo")),
        ("VOD.L", None, ("VOD.L", "XLON", "GBP", "Europe/London")),
        ("7203.T", None, ("7203.T", "XTKS", "JPY", "Asia/Tokyo")),
        ("RELIANCE.NS", None, ("RELIANCE.NS", "XNSE", "INR", "Asia/Kolkata")),
        ("AAPL", None, ("AAPL", "XNYS", "USD", "America/New_York")),
        ("FOO.XY", "xwar", ("FOO.XY", "XWAR", "PLN", "Europe/Warsaw")),
        ("AAPL", "XNAS", ("AAPL", "XNYS", "USD", "America/New_York")),
    ],
)
def test_listing_of(symbol: str, exchange: str | None, expected: tuple[str, ...]) -> None:
    listing = listing_of(symbol, exchange)
    assert (listing.symbol, listing.exchange, listing.currency, listing.timezone) == expected


def test_listing_errors_are_the_exchange_errors() -> None:
    with pytest.raises(UnknownSuffixError):
        listing_of("FOO.XY")
    with pytest.raises(UnknownExchangeError):
        listing_of("PETR4.SA", "B3")


PETR4 = Listing(symbol="PETR4.SA", exchange="BVMF", currency="BRL", timezone="America/Sao_Paulo")


def test_a_report_that_agrees_gives_nothing() -> None:
    reported = ReportedListing(
        exchange="BVMF", exchange_name="SAO", currency="BRL", timezone="America/Sao_Paulo"
    )
    assert compare_listing(PETR4, reported) == ()
    assert compare_listing(PETR4, ReportedListing()) == ()


def test_a_ticker_yahoo_places_elsewhere_is_reported_on_every_field() -> None:
    # A plain ticker is New York's by convention; Yahoo places this one in Tokyo.
    listing = listing_of("SONY")
    reported = ReportedListing(
        exchange="XTKS", exchange_name="JPX", currency="JPY", timezone="Asia/Tokyo"
    )

    found = compare_listing(listing, reported)

    assert [(d.field, d.expected, d.reported) for d in found] == [
        ("exchange", "XNYS", "XTKS"),
        ("currency", "USD", "JPY"),
        ("timezone", "America/New_York", "Asia/Tokyo"),
    ]
    assert found[0].message == "SONY: the source lists it on JPX (XTKS), not on XNYS"
    assert (
        found[1].message == "SONY: the source quotes it in JPY, not in USD (the currency of XNYS)"
    )
    assert all(isinstance(d, ListingDisagreement) and d.symbol == "SONY" for d in found)


def test_pence_are_reported_as_a_minor_unit() -> None:
    listing = listing_of("VOD.L")

    (found,) = compare_listing(listing, ReportedListing(exchange="XLON", currency="GBp"))

    assert (found.field, found.expected, found.reported) == ("currency", "GBP", "GBp")
    assert "hundredths of GBP" in found.message
    assert "100 times" in found.message


def test_one_zone_under_two_names_is_no_disagreement() -> None:
    listing = listing_of("RELIANCE.NS")
    assert listing.timezone == "Asia/Kolkata"

    assert compare_listing(listing, ReportedListing(timezone="Asia/Calcutta")) == ()
    (found,) = compare_listing(listing, ReportedListing(timezone="UTC"))
    assert found.field == "timezone"
    (unreadable,) = compare_listing(listing, ReportedListing(timezone="Not/AZone"))
    assert unreadable.reported == "Not/AZone"


def test_an_exchange_without_one_currency_compares_nothing_on_currency() -> None:
    listing = Listing(symbol="X", exchange="AIXK", currency=None, timezone="Asia/Almaty")
    assert compare_listing(listing, ReportedListing(currency="USD")) == ()
