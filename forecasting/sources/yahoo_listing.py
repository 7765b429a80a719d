"""What Yahoo's chart metadata says about a symbol's listing, as a :class:`ReportedListing`.

Every chart answer carries a ``meta`` object: the currency (``BRL``, or ``GBp`` for London's
pence), Yahoo's own exchange code (``SAO`` for B3) and the exchange's time zone. It comes with the
bars, so reporting it costs no request.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from forecasting.listings import ReportedListing

#: Yahoo's exchange codes for the exchanges this service maps tickers to, as MICs (canonical in
#: exchange-calendars: Nasdaq and NYSE Arca trade on New York's calendar). Codes not here are
#: reported by name only; the time zone is still compared.
YAHOO_EXCHANGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "NYQ": "XNYS",  # New York Stock Exchange
        "NMS": "XNYS",  # Nasdaq Global Select
        "NGM": "XNYS",  # Nasdaq Global Market
        "NCM": "XNYS",  # Nasdaq Capital Market
        "ASE": "XNYS",  # NYSE American
        "PCX": "XNYS",  # NYSE Arca
        "BTS": "XNYS",  # Cboe BZX
        "SNP": "XNYS",  # S&P indices (^GSPC)
        "DJI": "XNYS",  # Dow Jones indices (^DJI)
        "NIM": "XNYS",  # Nasdaq indices (^IXIC)
        "SAO": "BVMF",  # B3, São Paulo (shares and ^BVSP)
        "LSE": "XLON",  # London Stock Exchange
        "FGI": "XLON",  # FTSE indices (^FTSE)
        "TOR": "XTSE",  # Toronto Stock Exchange
        "JPX": "XTKS",  # Tokyo Stock Exchange
        "OSA": "XTKS",  # Osaka (^N225)
        "HKG": "XHKG",  # Hong Kong Exchanges
        "GER": "XETR",  # Xetra
        "PAR": "XPAR",  # Euronext Paris
        "ASX": "XASX",  # Australian Securities Exchange
        "NSI": "XNSE",  # National Stock Exchange of India
        "BSE": "XBOM",  # BSE, Mumbai
    }
)


def reported_listing(metadata: Mapping[str, Any]) -> ReportedListing:
    """The listing Yahoo reports in a chart's ``meta`` (fields it leaves out stay None)."""
    name = _text(metadata.get("exchangeName"))
    return ReportedListing(
        exchange=YAHOO_EXCHANGES.get(name) if name is not None else None,
        exchange_name=name,
        currency=_text(metadata.get("currency")),
        timezone=_text(metadata.get("exchangeTimezoneName")),
    )


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
