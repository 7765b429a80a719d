"""Which exchange a ticker trades on, and which exchange codes and currencies there are.

An exchange is named by its ISO 10383 MIC, as exchange-calendars names its calendars (``XNYS``,
``BVMF``, ``XLON``): the one code under which a symbol is stored, scheduled and dated. Without an
explicit code, the exchange is inferred from Yahoo's ticker conventions: the suffix after the last
dot (``PETR4.SA`` trades on B3, ``BVMF``), a known index ticker (``^BVSP``, ``^FTSE``), or New York for
a plain ticker (``AAPL``, ``BRK-B``). A suffix or index this module does not know is an error that
says so; it never silently becomes New York, whose calendar would date the forecasts wrongly.

The calendars themselves (sessions, closes, time zones) are exchange-calendars'
(:mod:`forecasting.calendar`); the package does not know currencies, so
:data:`EXCHANGE_CURRENCIES` says in which currency each exchange quotes its shares.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from forecasting.errors import PortableError
from forecasting.symbols import normalize_symbol

#: New York Stock Exchange: plain US tickers, and the default everywhere a symbol has no exchange.
DEFAULT_EXCHANGE: Final = "XNYS"

#: Yahoo's exchange suffixes (``PETR4.SA`` → ``.SA``) for which exchange-calendars has a calendar.
#: From Yahoo's list of exchanges and their suffixes; suffixes without a calendar are left out (for
#: example ``.SZ``, Shenzhen, and ``.CN``, the Canadian Securities Exchange).
SUFFIX_EXCHANGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        ".SA": "BVMF",  # B3, São Paulo
        ".L": "XLON",  # London Stock Exchange
        ".IL": "XLON",  # London Stock Exchange, international order book
        ".TO": "XTSE",  # Toronto Stock Exchange
        ".V": "XTSE",  # TSX Venture Exchange (exchange-calendars: XTSX is an alias of XTSE)
        ".T": "XTKS",  # Tokyo Stock Exchange
        ".HK": "XHKG",  # Hong Kong Exchanges
        ".DE": "XETR",  # Xetra
        ".F": "XFRA",  # Frankfurt Stock Exchange (floor)
        ".PA": "XPAR",  # Euronext Paris
        ".AS": "XAMS",  # Euronext Amsterdam
        ".BR": "XBRU",  # Euronext Brussels
        ".LS": "XLIS",  # Euronext Lisbon
        ".IR": "XDUB",  # Euronext Dublin
        ".MI": "XMIL",  # Borsa Italiana, Milan
        ".MC": "XMAD",  # Bolsa de Madrid
        ".SW": "XSWX",  # SIX Swiss Exchange
        ".ST": "XSTO",  # Nasdaq Stockholm
        ".CO": "XCSE",  # Nasdaq Copenhagen
        ".HE": "XHEL",  # Nasdaq Helsinki
        ".IC": "XICE",  # Nasdaq Iceland
        ".OL": "XOSL",  # Oslo Børs
        ".VI": "XWBO",  # Wiener Börse
        ".WA": "XWAR",  # Warsaw Stock Exchange
        ".PR": "XPRA",  # Prague Stock Exchange
        ".BD": "XBUD",  # Budapest Stock Exchange
        ".AT": "ASEX",  # Athens Stock Exchange
        ".IS": "XIST",  # Borsa Istanbul
        ".TA": "XTAE",  # Tel Aviv Stock Exchange
        ".JO": "XJSE",  # Johannesburg Stock Exchange
        ".SR": "XSAU",  # Saudi Exchange (Tadawul)
        ".AX": "XASX",  # Australian Securities Exchange
        ".NZ": "XNZE",  # New Zealand Exchange
        ".NS": "XNSE",  # National Stock Exchange of India (on XBOM's calendar, see below)
        ".BO": "XBOM",  # BSE, Mumbai
        ".KS": "XKRX",  # Korea Exchange, KOSPI
        ".KQ": "XKRX",  # Korea Exchange, KOSDAQ
        ".TW": "XTAI",  # Taiwan Stock Exchange
        ".SS": "XSHG",  # Shanghai Stock Exchange
        ".SI": "XSES",  # Singapore Exchange
        ".KL": "XKLS",  # Bursa Malaysia
        ".BK": "XBKK",  # Stock Exchange of Thailand
        ".JK": "XIDX",  # Indonesia Stock Exchange
        ".MX": "XMEX",  # Bolsa Mexicana de Valores
        ".SN": "XSGO",  # Santiago Stock Exchange
        ".BA": "XBUE",  # Bolsas y Mercados Argentinos
    }
)

#: Yahoo's index tickers, which carry no suffix, mapped to the exchange whose sessions they follow.
INDEX_EXCHANGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "^GSPC": "XNYS",  # S&P 500
        "^DJI": "XNYS",  # Dow Jones Industrial Average
        "^IXIC": "XNYS",  # Nasdaq Composite
        "^NDX": "XNYS",  # Nasdaq-100
        "^RUT": "XNYS",  # Russell 2000
        "^NYA": "XNYS",  # NYSE Composite
        "^VIX": "XNYS",  # Cboe Volatility Index
        "^BVSP": "BVMF",  # Ibovespa
        "^FTSE": "XLON",  # FTSE 100
        "^FTMC": "XLON",  # FTSE 250
        "^GSPTSE": "XTSE",  # S&P/TSX Composite
        "^N225": "XTKS",  # Nikkei 225
        "^HSI": "XHKG",  # Hang Seng
        "^GDAXI": "XETR",  # DAX
        "^FCHI": "XPAR",  # CAC 40
        "^AEX": "XAMS",  # AEX
        "^IBEX": "XMAD",  # IBEX 35
        "^SSMI": "XSWX",  # SMI
        "^AXJO": "XASX",  # S&P/ASX 200
        "^AORD": "XASX",  # All Ordinaries
        "^NZ50": "XNZE",  # S&P/NZX 50
        "^NSEI": "XNSE",  # Nifty 50
        "^BSESN": "XBOM",  # S&P BSE Sensex
        "^KS11": "XKRX",  # KOSPI
        "^TWII": "XTAI",  # TAIEX
        "^STI": "XSES",  # Straits Times Index
        "^JKSE": "XIDX",  # Jakarta Composite
        "^KLSE": "XKLS",  # FTSE Bursa Malaysia KLCI
        "^MXX": "XMEX",  # S&P/BMV IPC
        "^MERV": "XBUE",  # MERVAL
    }
)

#: Exchanges that exchange-calendars has no calendar for, served by the calendar of an exchange
#: that trades on the same days and at the same hours. NSE and BSE (Mumbai) publish one list of
#: market holidays and both trade 09:15-15:30 India time.
CALENDAR_STAND_INS: Final[Mapping[str, str]] = MappingProxyType({"XNSE": "XBOM"})
#: Other names accepted for those exchanges (exchange-calendars' own aliases are accepted too).
_OWN_ALIASES: Final[Mapping[str, str]] = MappingProxyType({"NSE": "XNSE"})

#: The currency (ISO 4217) each exchange quotes its shares in, for every exchange-calendars
#: exchange. Where a listing quotes in another currency or in a minor unit (London's pence),
#: the source's own report says so (:func:`forecasting.listings.compare_listing`). Left out:
#: AIXK (Astana), which trades in US dollars and tenge alike.
EXCHANGE_CURRENCIES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "ASEX": "EUR",
        "BVMF": "BRL",
        "CMES": "USD",
        "IEPA": "USD",
        "XAMS": "EUR",
        "XASX": "AUD",
        "XBDA": "BMD",
        "XBEL": "RSD",
        "XBKK": "THB",
        "XBOG": "COP",
        "XBOM": "INR",
        "XBRA": "EUR",
        "XBRU": "EUR",
        "XBSE": "RON",
        "XBUD": "HUF",
        "XBUE": "ARS",
        "XCBF": "USD",
        "XCSE": "DKK",
        "XCYS": "EUR",
        "XDUB": "EUR",
        "XDUS": "EUR",
        "XEEE": "EUR",
        "XETR": "EUR",
        "XEUR": "EUR",
        "XFRA": "EUR",
        "XHAM": "EUR",
        "XHEL": "EUR",
        "XHKG": "HKD",
        "XICE": "ISK",
        "XIDX": "IDR",
        "XIST": "TRY",
        "XJSE": "ZAR",
        "XKAR": "PKR",
        "XKLS": "MYR",
        "XKRX": "KRW",
        "XLIM": "PEN",
        "XLIS": "EUR",
        "XLIT": "EUR",
        "XLJU": "EUR",
        "XLON": "GBP",
        "XLUX": "EUR",
        "XMAD": "EUR",
        "XMEX": "MXN",
        "XMIL": "EUR",
        "XMOS": "RUB",
        "XNSE": "INR",
        "XNYS": "USD",
        "XNZE": "NZD",
        "XOSL": "NOK",
        "XPAR": "EUR",
        "XPHS": "PHP",
        "XPRA": "CZK",
        "XRIS": "EUR",
        "XSAU": "SAR",
        "XSES": "SGD",
        "XSGO": "CLP",
        "XSHG": "CNY",
        "XSTO": "SEK",
        "XSTU": "EUR",
        "XSWX": "CHF",
        "XTAE": "ILS",
        "XTAI": "TWD",
        "XTAL": "EUR",
        "XTKS": "JPY",
        "XTSE": "CAD",
        "XWAR": "PLN",
        "XWBO": "EUR",
        "XZAG": "EUR",
    }
)

#: The exchanges ticker conventions lead to: the short list an error message names.
MAPPED_EXCHANGES: Final = tuple(
    sorted({*SUFFIX_EXCHANGES.values(), *INDEX_EXCHANGES.values(), DEFAULT_EXCHANGE})
)


class UnknownExchangeError(PortableError, ValueError):
    """An exchange code that no calendar answers to; the message names the accepted ones."""

    def __init__(self, exchange: str) -> None:
        shown = exchange if len(exchange) <= 20 else exchange[:17] + "..."
        super().__init__(
            f"unknown exchange {shown!r}: expected the ISO MIC of an exchange with a trading "
            f"calendar, such as {', '.join(MAPPED_EXCHANGES)}, or any other code of the "
            "exchange-calendars package"
        )
        self.exchange = exchange
        #: Every accepted code (canonical; aliases such as NYSE or XNAS are accepted too).
        self.accepted = known_exchanges()


class ExchangeInferenceError(PortableError, ValueError):
    """The exchange of a ticker cannot be told from the ticker alone: name it explicitly."""


class UnknownSuffixError(ExchangeInferenceError):
    """A ticker suffix (``.XY``, ``=X``) that maps to no exchange this service has a calendar for."""

    def __init__(self, symbol: str, suffix: str) -> None:
        super().__init__(
            f"unknown ticker suffix {suffix!r} in {symbol!r}: cannot tell its exchange (it is not "
            f"taken to be New York); give the exchange explicitly, or use a known suffix such as "
            f"{', '.join(sorted(SUFFIX_EXCHANGES))}{_share_class_hint(suffix)}"
        )
        self.symbol = symbol
        self.suffix = suffix


class UnknownIndexError(ExchangeInferenceError):
    """An index ticker (``^XYZ``) without a suffix whose exchange this module does not know."""

    def __init__(self, symbol: str) -> None:
        super().__init__(
            f"unknown index ticker {symbol!r}: cannot tell its exchange; give the exchange "
            f"explicitly, or use a known index such as {', '.join(sorted(INDEX_EXCHANGES))}"
        )
        self.symbol = symbol


def _share_class_hint(suffix: str) -> str:
    if len(suffix) == 2 and suffix[0] == ".":
        return f" (Yahoo writes a share class with a dash: BRK-B, not BRK{suffix})"
    return ""


def ticker_suffix(symbol: str) -> str | None:
    """Yahoo's exchange suffix of a normalised ticker (``.SA`` for ``PETR4.SA``; ``=X`` for a
    currency pair, ``=F`` for a future), or None for a plain ticker such as ``BRK-B``."""
    for separator in ("=", "."):
        stem, found, suffix = symbol.rpartition(separator)
        if found and stem:
            return separator + suffix
    return None


def infer_exchange(symbol: str) -> str:
    """The exchange a Yahoo ticker trades on, from its suffix or index name; New York without one.

    Raises :class:`~forecasting.symbols.InvalidSymbolError` for a malformed ticker and
    :class:`ExchangeInferenceError` (:class:`UnknownSuffixError`, :class:`UnknownIndexError`) for
    one whose exchange cannot be told.
    """
    ticker = normalize_symbol(symbol)
    suffix = ticker_suffix(ticker)
    if suffix is not None:
        exchange = SUFFIX_EXCHANGES.get(suffix)
        if exchange is None:
            raise UnknownSuffixError(ticker, suffix)
        return exchange
    if ticker.startswith("^"):
        exchange = INDEX_EXCHANGES.get(ticker)
        if exchange is None:
            raise UnknownIndexError(ticker)
        return exchange
    return DEFAULT_EXCHANGE


def validate_exchange(code: str) -> str:
    """The canonical code of an exchange given by a person (``bvmf``, ``NYSE``, ``XNAS``), or
    :class:`UnknownExchangeError`. Aliases resolve as exchange-calendars resolves them (Nasdaq and
    NYSE Arca share New York's calendar, so ``XNAS`` is ``XNYS``)."""
    if not isinstance(code, str):
        raise UnknownExchangeError(str(code))
    candidate = code.strip().upper()
    canonical = _accepted_codes().get(candidate)
    if canonical is None:
        raise UnknownExchangeError(code)
    return canonical


def resolve_exchange(symbol: str, exchange: str | None = None) -> str:
    """The exchange to use for ``symbol``: ``exchange`` validated when given, else inferred."""
    if exchange is not None:
        return validate_exchange(exchange)
    return infer_exchange(symbol)


def known_exchanges() -> tuple[str, ...]:
    """Every canonical exchange code :func:`validate_exchange` accepts, sorted."""
    return tuple(sorted(set(_accepted_codes().values())))


def calendar_name(exchange: str) -> str:
    """The exchange-calendars calendar that serves ``exchange`` (itself, or its stand-in)."""
    return CALENDAR_STAND_INS.get(exchange, exchange)


def exchange_currency(exchange: str) -> str | None:
    """The ISO 4217 currency ``exchange`` quotes shares in, or None where that is not one
    currency (see :data:`EXCHANGE_CURRENCIES`)."""
    return EXCHANGE_CURRENCIES.get(validate_exchange(exchange))


@functools.cache
def _accepted_codes() -> Mapping[str, str]:
    """Accepted spelling → canonical code: exchange-calendars' exchanges named by a MIC (four
    capitals; not ``24/7`` or ``us_futures``), their aliases, and this module's stand-ins."""
    # Imported here: exchange_calendars takes ~0.7 s to import and most processes never need it.
    import exchange_calendars

    canonical = {
        name
        for name in exchange_calendars.get_calendar_names(include_aliases=False)
        if len(name) == 4 and name.isalpha() and name.isupper()
    }
    accepted = {name: name for name in canonical}
    for alias, name in exchange_calendars.aliases_to_names().items():
        if name in canonical:
            accepted[alias] = name
    accepted.update({code: code for code in CALENDAR_STAND_INS})
    accepted.update(_OWN_ALIASES)
    return MappingProxyType(accepted)
