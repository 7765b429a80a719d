"""The yfinance source, tested through yfinance's and curl_cffi's own code with canned Yahoo answers.

Only the network edge is fake: a local HTTPS server plays every Yahoo host (cookie, crumb, chart,
quote), and the session reaches it through curl's RESOLVE and PORT options, so each request goes
through yfinance's request building, cookie/crumb dance, JSON parsing and auto-adjustment, and
through a real curl transfer with real timeouts. The canned payloads are in ``fixtures/yahoo``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pandas as pd
import platformdirs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from curl_cffi import CurlOpt

from forecasting.listings import ReportedListing, compare_listing, listing_of
from forecasting.sources import (
    NoDataError,
    RateLimitedError,
    SourceError,
    SourceTimeoutError,
    SourceUnavailableError,
    UnknownSymbolError,
    make_source,
)
from forecasting.sources.batch import BatchPolicy, BatchPriceSource, FetchRequest, fetch_batch
from forecasting.sources.yahoo import YahooSession, YFinanceSource, _configure_yfinance_once

FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"
NEW_YORK = ZoneInfo("America/New_York")
CRUMB = "Xy7pQ3rT9aB"


@dataclass(frozen=True, kw_only=True)
class Canned:
    """One canned answer; ``by_period`` makes a chart answer honour period1/period2/range."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json;charset=utf-8"
    delay_s: float = 0.0
    by_period: bool = False


def fixture(name: str, *, status: int = 200, **options: Any) -> Canned:
    content_type = "application/json;charset=utf-8"
    if name.endswith(".txt"):
        content_type = "text/plain;charset=utf-8"
    elif name.endswith(".html"):
        content_type = "text/html;charset=utf-8"
    body = (FIXTURES / name).read_bytes()
    return Canned(status=status, body=body, content_type=content_type, **options)


@dataclass(frozen=True, kw_only=True)
class SeenRequest:
    method: str
    host: str
    path: str
    query: dict[str, str]


@dataclass(kw_only=True)
class FakeYahoo:
    """What the fake Yahoo answers, per symbol, and every request it saw.

    A chart answer may be a list: the symbol's first chart request gets the first answer, and so
    on, the last one standing for every later request (a rate limit that lifts).
    """

    charts: dict[str, Canned | list[Canned]] = field(default_factory=dict)
    quote_summaries: dict[str, Canned] = field(default_factory=dict)
    seen: list[SeenRequest] = field(default_factory=list)
    closing: threading.Event = field(default_factory=threading.Event)
    chart_requests: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def chart_answer(self, symbol: str) -> Canned:
        planned = self.charts.get(symbol, fixture("chart_not_found.json", status=404))
        with self.lock:
            served = self.chart_requests.get(symbol, 0)
            self.chart_requests[symbol] = served + 1
        if isinstance(planned, list):
            return planned[min(served, len(planned) - 1)]
        return planned

    def answer(self, method: str, host: str, target: str) -> tuple[Canned, list[tuple[str, str]]]:
        parts = urlsplit(target)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        self.seen.append(SeenRequest(method=method, host=host, path=parts.path, query=query))
        if host == "fc.yahoo.com":
            # Like the real one: a 404 page that sets the A3 cookie.
            expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=365)).strftime(
                "%a, %d %b %Y %H:%M:%S GMT"
            )
            cookie = f"A3=d=AQABBFAKE&S=AQAAAFAKE; Expires={expires}; Domain=.yahoo.com; Path=/"
            return Canned(status=404, body=b"<html>not found</html>"), [("Set-Cookie", cookie)]
        if parts.path == "/v1/test/getcrumb":
            return Canned(body=CRUMB.encode(), content_type="text/plain"), []
        if parts.path.startswith("/v8/finance/chart/"):
            symbol = parts.path.rsplit("/", 1)[-1]
            canned = self.chart_answer(symbol)
            if canned.by_period:
                canned = Canned(
                    status=canned.status,
                    body=slice_chart(canned.body, query),
                    content_type=canned.content_type,
                )
            return canned, []
        if parts.path.startswith("/v10/finance/quoteSummary/"):
            symbol = parts.path.rsplit("/", 1)[-1]
            default = fixture("quote_summary_not_found.json", status=404)
            return self.quote_summaries.get(symbol, default), []
        if parts.path == "/v7/finance/quote":
            return Canned(body=b'{"quoteResponse":{"result":[],"error":null}}'), []
        return Canned(status=404, body=b"<html>not found</html>", content_type="text/html"), []


def slice_chart(body: bytes, query: dict[str, str]) -> bytes:
    """Keep the bars Yahoo would return for the query: period1 <= t < period2, or the last one."""
    payload = json.loads(body)
    result = payload["chart"]["result"][0]
    stamps: list[int] = result["timestamp"]
    if "period1" in query:
        low, high = int(query["period1"]), int(query["period2"])
        keep = [i for i, stamp in enumerate(stamps) if low <= stamp < high]
    else:
        keep = [len(stamps) - 1]
    result["timestamp"] = [stamps[i] for i in keep]
    quote = result["indicators"]["quote"][0]
    for key in list(quote):
        quote[key] = [quote[key][i] for i in keep]
    adjclose = result["indicators"]["adjclose"][0]
    adjclose["adjclose"] = [adjclose["adjclose"][i] for i in keep]
    return json.dumps(payload).encode()


class YahooHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: YahooServer

    def do_GET(self) -> None:
        self.respond("GET")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.respond("POST")

    def respond(self, method: str) -> None:
        host = (self.headers.get("Host") or "").split(":")[0]
        canned, headers = self.server.fake.answer(method, host, self.path)
        if canned.delay_s and self.server.fake.closing.wait(canned.delay_s):
            return
        self.send_response(canned.status)
        self.send_header("Content-Type", canned.content_type)
        self.send_header("Content-Length", str(len(canned.body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(canned.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class YahooServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), YahooHandler)
        self.fake = FakeYahoo()
        self.socket = context.wrap_socket(self.socket, server_side=True)


def self_signed_context(directory: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yahoo.com")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("yahoo.com"),
                    x509.DNSName("*.yahoo.com"),
                    x509.DNSName("*.finance.yahoo.com"),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    context.set_alpn_protocols(["http/1.1"])
    return context


@pytest.fixture(scope="module")
def yahoo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[YahooServer]:
    server = YahooServer(self_signed_context(tmp_path_factory.mktemp("tls")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.fake.closing.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake(yahoo_server: YahooServer) -> FakeYahoo:
    yahoo_server.fake.charts.clear()
    yahoo_server.fake.quote_summaries.clear()
    yahoo_server.fake.seen.clear()
    yahoo_server.fake.chart_requests.clear()
    return yahoo_server.fake


def session_to(port: int) -> YahooSession:
    """A real curl_cffi session whose every connection, to any Yahoo host, lands on ``port``."""
    return YahooSession(
        verify=False,
        trust_env=False,
        # Every host resolves to 127.0.0.1 and every connection uses ``port`` instead of 443.
        curl_options={CurlOpt.PORT: port, CurlOpt.RESOLVE: [f"*:{port}:127.0.0.1"]},
    )


@pytest.fixture
def source(yahoo_server: YahooServer, fake: FakeYahoo) -> YFinanceSource:
    return YFinanceSource(timeout=2.0, session=session_to(yahoo_server.server_address[1]))


def canned_aapl() -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / "chart_AAPL_2024-05.json").read_bytes())
    result: dict[str, Any] = payload["chart"]["result"][0]
    return result


def test_bars_come_back_adjusted_for_the_dividend(fake: FakeYahoo, source: YFinanceSource) -> None:
    fake.charts["AAPL"] = fixture("chart_AAPL_2024-05.json", by_period=True)

    bars = source.fetch("aapl", dt.date(2024, 5, 6), dt.date(2024, 5, 17))

    result = canned_aapl()
    quote = result["indicators"]["quote"][0]
    adjclose = result["indicators"]["adjclose"][0]["adjclose"]
    assert [d.date().isoformat() for d in bars["date"]] == [
        "2024-05-06", "2024-05-07", "2024-05-08", "2024-05-09", "2024-05-10",
        "2024-05-13", "2024-05-14", "2024-05-15", "2024-05-16", "2024-05-17",
    ]  # fmt: skip
    for i in range(len(bars)):
        ratio = adjclose[i] / quote["close"][i]
        for column in ("open", "high", "low"):
            assert bars[column][i] == pytest.approx(quote[column][i] * ratio, rel=1e-12)
        assert bars["close"][i] == pytest.approx(adjclose[i], rel=1e-12)
        assert bars["volume"][i] == quote["volume"][i]
    # The $0.25 dividend went ex on 2024-05-10: the close before it is lowered, the ones after not.
    assert bars["close"][3] == pytest.approx(184.57 - 0.25, abs=0.01)
    assert bars["close"][4] == pytest.approx(183.05, abs=1e-4)
    assert bars["adj_close"].isna().all()
    assert list(bars.columns) == ["date", "open", "high", "low", "close", "adj_close", "volume"]


def test_end_is_inclusive_and_the_range_reaches_yahoo(
    fake: FakeYahoo, source: YFinanceSource
) -> None:
    fake.charts["AAPL"] = fixture("chart_AAPL_2024-05.json", by_period=True)

    bars = source.fetch("AAPL", dt.date(2024, 5, 8), dt.date(2024, 5, 14))

    assert [d.date() for d in bars["date"]] == [
        dt.date(2024, 5, 8),
        dt.date(2024, 5, 9),
        dt.date(2024, 5, 10),
        dt.date(2024, 5, 13),
        dt.date(2024, 5, 14),
    ]
    history = [r for r in fake.seen if r.path == "/v8/finance/chart/AAPL" and "period1" in r.query]
    assert len(history) == 1
    midnight = dt.datetime(2024, 5, 8, tzinfo=NEW_YORK)
    assert int(history[0].query["period1"]) == int(midnight.timestamp())
    assert int(history[0].query["period2"]) == int((midnight + dt.timedelta(days=7)).timestamp())
    assert history[0].query["interval"] == "1d"
    # The cookie and crumb came from the fake too: nothing went to the real Yahoo.
    assert history[0].query["crumb"] == CRUMB
    assert {r.host for r in fake.seen} <= {
        "fc.yahoo.com",
        "query1.finance.yahoo.com",
        "query2.finance.yahoo.com",
        "guce.yahoo.com",
        "consent.yahoo.com",
    }


def test_a_bar_of_a_session_still_open_is_dropped(
    yahoo_server: YahooServer, fake: FakeYahoo
) -> None:
    fake.charts["AAPL"] = fixture("chart_AAPL_2024-05.json", by_period=True)
    port = yahoo_server.server_address[1]

    def fetch_at(now: dt.datetime) -> pd.DataFrame:
        source = YFinanceSource(timeout=2.0, session=session_to(port), clock=lambda: now)
        return source.fetch("AAPL", dt.date(2024, 5, 13), dt.date(2024, 5, 17))

    during = fetch_at(dt.datetime(2024, 5, 17, 15, 0, tzinfo=NEW_YORK))
    after = fetch_at(dt.datetime(2024, 5, 17, 16, 0, tzinfo=NEW_YORK))

    assert during["date"].iloc[-1].date() == dt.date(2024, 5, 16)
    assert after["date"].iloc[-1].date() == dt.date(2024, 5, 17)
    assert len(after) == len(during) + 1


def test_unknown_symbol(fake: FakeYahoo, source: YFinanceSource) -> None:
    # yfinance asks the quote endpoint about a symbol without a timezone only for its first two
    # such symbols per process, so the same symbol can take either path: both must say "unknown".
    for _ in range(3):
        with pytest.raises(UnknownSymbolError, match="unknown symbol 'ZZZZZ'") as caught:
            source.fetch("ZZZZZ", dt.date(2024, 5, 6), dt.date(2024, 5, 17))
        assert caught.value.transient is False
    assert any(r.path == "/v8/finance/chart/ZZZZZ" for r in fake.seen)


def test_empty_result_is_no_data(fake: FakeYahoo, source: YFinanceSource) -> None:
    fake.charts["MSFT"] = fixture("chart_empty.json")

    with pytest.raises(
        NoDataError, match=r"no bars for MSFT in 2024-05-11 \.\. 2024-05-12"
    ) as caught:
        source.fetch("MSFT", dt.date(2024, 5, 11), dt.date(2024, 5, 12))

    assert caught.value.transient is False


def test_a_range_with_no_sessions_is_no_data(fake: FakeYahoo, source: YFinanceSource) -> None:
    fake.charts["AAPL"] = fixture("chart_AAPL_2024-05.json", by_period=True)

    with pytest.raises(NoDataError):
        source.fetch("AAPL", dt.date(2024, 5, 11), dt.date(2024, 5, 12))


def test_rate_limit(fake: FakeYahoo, source: YFinanceSource) -> None:
    fake.charts["NVDA"] = fixture("rate_limited.txt", status=429)

    with pytest.raises(RateLimitedError) as caught:
        source.fetch("NVDA", dt.date(2024, 5, 6), dt.date(2024, 5, 17))

    assert caught.value.transient is True


@pytest.mark.parametrize(
    "answer",
    [
        fixture("server_error.json", status=500),
        fixture("will_be_right_back.html", status=503),
    ],
    ids=["500-json", "503-html"],
)
def test_server_errors_are_unavailable(
    fake: FakeYahoo, source: YFinanceSource, answer: Canned
) -> None:
    fake.charts["KO"] = answer

    with pytest.raises(SourceUnavailableError) as caught:
        source.fetch("KO", dt.date(2024, 5, 6), dt.date(2024, 5, 17))

    assert caught.value.transient is True
    assert f"HTTP {answer.status}" in str(caught.value)


def test_server_error_after_the_timezone_is_known(fake: FakeYahoo, source: YFinanceSource) -> None:
    # First fetch succeeds and caches JPM's timezone; then Yahoo fails the history request only.
    fake.charts["JPM"] = fixture("chart_AAPL_2024-05.json", by_period=True)
    source.fetch("JPM", dt.date(2024, 5, 6), dt.date(2024, 5, 17))
    fake.charts["JPM"] = fixture("server_error.json", status=500)

    with pytest.raises(SourceUnavailableError, match="HTTP 500"):
        source.fetch("JPM", dt.date(2024, 5, 6), dt.date(2024, 5, 17))


def test_timeout_holds_every_request_to_the_source_timeout(
    yahoo_server: YahooServer, fake: FakeYahoo
) -> None:
    fake.charts["XOM"] = fixture("chart_AAPL_2024-05.json", delay_s=20.0)
    source = YFinanceSource(timeout=0.5, session=session_to(yahoo_server.server_address[1]))

    started = time.perf_counter()
    with pytest.raises(SourceTimeoutError, match=r"no answer within 0\.5 s") as caught:
        source.fetch("XOM", dt.date(2024, 5, 6), dt.date(2024, 5, 17))
    elapsed = time.perf_counter() - started

    assert caught.value.transient is True
    assert isinstance(caught.value, TimeoutError)
    # yfinance asks for 10 s on its timezone request; the cap made it 0.5 s.
    assert elapsed < 3.0


def test_concurrent_fetches_keep_their_own_timeouts_on_one_session(
    yahoo_server: YahooServer, fake: FakeYahoo
) -> None:
    fake.charts["XOM"] = fixture("chart_AAPL_2024-05.json", delay_s=20.0)
    fake.charts["AAPL"] = fixture("chart_AAPL_2024-05.json", by_period=True, delay_s=1.0)
    shared = session_to(yahoo_server.server_address[1])
    impatient = YFinanceSource(timeout=0.5, session=shared)
    patient = YFinanceSource(timeout=5.0, session=shared)
    outcome: dict[str, Any] = {}

    def slow_but_patient() -> None:
        outcome["patient"] = patient.fetch("AAPL", dt.date(2024, 5, 6), dt.date(2024, 5, 17))

    worker = threading.Thread(target=slow_but_patient)
    worker.start()
    started = time.perf_counter()
    with pytest.raises(SourceTimeoutError):
        impatient.fetch("XOM", dt.date(2024, 5, 6), dt.date(2024, 5, 17))
    impatient_elapsed = time.perf_counter() - started
    worker.join(timeout=30)

    # Had the patient fetch's 5 s cap leaked into this thread, the timeout would take 5 s.
    assert impatient_elapsed < 3.0
    assert len(outcome["patient"]) == 10


def test_network_failure_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    source = YFinanceSource(timeout=2.0, session=session_to(closed_port))

    with pytest.raises(SourceUnavailableError) as caught:
        source.fetch("DIS", dt.date(2024, 5, 6), dt.date(2024, 5, 17))

    assert caught.value.transient is True
    assert isinstance(caught.value, SourceError)


def test_invalid_symbol_is_refused_before_any_request(
    fake: FakeYahoo, source: YFinanceSource
) -> None:
    from forecasting.symbols import InvalidSymbolError

    with pytest.raises(InvalidSymbolError):
        source.fetch("../etc/passwd")
    assert fake.seen == []


def test_yfinance_caches_stay_in_a_private_temporary_directory(
    fake: FakeYahoo, source: YFinanceSource
) -> None:
    user_cache = Path(platformdirs.user_cache_dir()) / "py-yfinance"
    existed_before = user_cache.exists()
    fake.charts["SPY"] = fixture("chart_AAPL_2024-05.json", by_period=True)

    source.fetch("SPY", dt.date(2024, 5, 6), dt.date(2024, 5, 17))

    cache_dir = Path(_configure_yfinance_once().cache_dir)
    assert cache_dir.parent == Path(tempfile.gettempdir())
    assert cache_dir.name.startswith("stockcast-yfinance-")
    assert (cache_dir / "tkr-tz.db").exists()
    if not existed_before:
        assert not user_cache.exists()


def test_make_source_builds_yfinance_and_importing_sources_stays_light() -> None:
    assert isinstance(make_source("yfinance", timeout=3.0), YFinanceSource)
    code = (
        "import sys, forecasting.sources; "
        "print(sorted(m for m in ('yfinance', 'curl_cffi') if m in sys.modules))"
    )
    repo_root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo_root
    )
    assert result.stdout.strip() == "[]"


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        YFinanceSource(timeout=0)


# --- Markets beyond New York and batches of symbols ---------------------------------------------
# The PETR4.SA payload has the shape of Yahoo's chart answer for a B3 share (metadata, bars at
# 10:00 São Paulo summer time); its prices are illustrative, not Yahoo's record.

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def petr4_chart(**options: Any) -> Canned:
    return fixture("chart_PETR4.SA_2018-12.json", by_period=True, **options)


def batch_source(server: YahooServer, *, timeout: float = 2.0, **policy: Any) -> YFinanceSource:
    """A source on the fake Yahoo whose backoff waits hundredths of a second (the real one waits
    seconds); ``policy`` sets the rest of its :class:`BatchPolicy`."""
    settings: dict[str, Any] = {"first_wait": 0.02, "max_wait": 0.1, "jitter": 0.01, **policy}
    return YFinanceSource(
        timeout=timeout, session=session_to(server.server_address[1]), batch=BatchPolicy(**settings)
    )


def test_a_b3_share_comes_with_its_currency_and_exchange(
    fake: FakeYahoo, source: YFinanceSource
) -> None:
    fake.charts["PETR4.SA"] = petr4_chart()

    fetched = source.fetch_listed("petr4.sa", dt.date(2018, 12, 26), dt.date(2019, 1, 4))

    assert fetched.symbol == "PETR4.SA"
    assert [d.date() for d in fetched.bars["date"]] == [
        dt.date(2018, 12, 26),
        dt.date(2018, 12, 27),
        dt.date(2018, 12, 28),
        dt.date(2019, 1, 2),
        dt.date(2019, 1, 3),
        dt.date(2019, 1, 4),
    ]
    # auto_adjust scales every price by adjclose / close.
    assert fetched.bars["close"].iloc[2] == pytest.approx(22.68 * 0.8215, rel=1e-9)
    assert fetched.listing == ReportedListing(
        exchange="BVMF", exchange_name="SAO", currency="BRL", timezone="America/Sao_Paulo"
    )
    listing = listing_of("PETR4.SA")
    assert (listing.exchange, listing.currency) == ("BVMF", "BRL")
    assert compare_listing(listing, fetched.listing) == ()
    # The B3 request was made from São Paulo midnight, as yfinance reads the ticker's zone.
    history = [r for r in fake.seen if r.path.endswith("/PETR4.SA") and "period1" in r.query]
    midnight = dt.datetime(2018, 12, 26, tzinfo=SAO_PAULO)
    assert int(history[0].query["period1"]) == int(midnight.timestamp())


def test_a_ticker_registered_on_the_wrong_exchange_is_reported(
    fake: FakeYahoo, source: YFinanceSource
) -> None:
    # Someone registered PETR4.SA on New York: Yahoo's metadata says otherwise.
    fake.charts["PETR4.SA"] = petr4_chart()
    fetched = source.fetch_listed("PETR4.SA", dt.date(2018, 12, 26), dt.date(2019, 1, 4))
    assert fetched.listing is not None

    found = compare_listing(listing_of("PETR4.SA", "XNYS"), fetched.listing)

    assert [(d.field, d.expected, d.reported) for d in found] == [
        ("exchange", "XNYS", "BVMF"),
        ("currency", "USD", "BRL"),
        ("timezone", "America/New_York", "America/Sao_Paulo"),
    ]


def test_an_open_b3_session_is_judged_by_b3s_close_not_new_yorks(
    yahoo_server: YahooServer, fake: FakeYahoo
) -> None:
    fake.charts["PETR4.SA"] = petr4_chart()
    port = yahoo_server.server_address[1]

    def last_bar_at(now: dt.datetime, exchange: str | None = None) -> dt.date:
        source = YFinanceSource(timeout=2.0, session=session_to(port), clock=lambda: now)
        fetched = source.fetch_listed(
            "PETR4.SA", dt.date(2019, 1, 2), dt.date(2019, 1, 4), exchange=exchange
        )
        result: dt.date = fetched.bars["date"].iloc[-1].date()
        return result

    # B3 closes at 17:00 São Paulo summer time (19:00 UTC); New York at 16:00 (21:00 UTC).
    during_b3 = dt.datetime(2019, 1, 4, 16, 30, tzinfo=SAO_PAULO)
    after_b3 = dt.datetime(2019, 1, 4, 17, 30, tzinfo=SAO_PAULO)
    assert last_bar_at(during_b3) == dt.date(2019, 1, 3)
    assert last_bar_at(after_b3) == dt.date(2019, 1, 4)
    # New York's calendar (given explicitly) would still call that bar unfinished.
    assert last_bar_at(after_b3, exchange="XNYS") == dt.date(2019, 1, 3)


def test_a_batch_waits_out_a_rate_limit_and_fails_an_unknown_ticker_alone(
    yahoo_server: YahooServer, fake: FakeYahoo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="forecasting.sources.batch")
    aapl = fixture("chart_AAPL_2024-05.json", by_period=True)
    fake.charts["AAPL"] = aapl
    fake.charts["PETR4.SA"] = petr4_chart()
    # yfinance asks again once itself (with its other cookie strategy) before it gives up, so two
    # 429s make one rate-limited try; the batch's own retry then gets the data.
    limited = fixture("rate_limited.txt", status=429)
    fake.charts["MSFT"] = [limited, limited, aapl]
    source = batch_source(yahoo_server, timeout=2.0, chunk_size=2, max_workers=2, attempts=3)

    result = source.fetch_many(
        [
            FetchRequest(symbol="AAPL", start=dt.date(2024, 5, 6), end=dt.date(2024, 5, 17)),
            FetchRequest(symbol="ZZZZZ", start=dt.date(2024, 5, 6), end=dt.date(2024, 5, 17)),
            FetchRequest(symbol="msft", start=dt.date(2024, 5, 13), end=dt.date(2024, 5, 17)),
            FetchRequest(symbol="PETR4.SA", start=dt.date(2018, 12, 28), end=dt.date(2019, 1, 4)),
        ]
    )

    assert sorted(result.fetched) == ["AAPL", "MSFT", "PETR4.SA"]
    assert len(result.fetched["AAPL"].bars) == 10
    assert [d.date() for d in result.fetched["MSFT"].bars["date"]] == [
        dt.date(2024, 5, 13),
        dt.date(2024, 5, 14),
        dt.date(2024, 5, 15),
        dt.date(2024, 5, 16),
        dt.date(2024, 5, 17),
    ]
    petr4 = result.fetched["PETR4.SA"]
    assert [d.date() for d in petr4.bars["date"]][:2] == [
        dt.date(2018, 12, 28),
        dt.date(2019, 1, 2),
    ]
    assert petr4.listing is not None
    assert petr4.listing.currency == "BRL"
    assert result.fetched["AAPL"].listing == ReportedListing(
        exchange="XNYS", exchange_name="NMS", currency="USD", timezone="America/New_York"
    )
    assert list(result.failed) == ["ZZZZZ"]
    assert isinstance(result.failed["ZZZZZ"], UnknownSymbolError)
    assert fake.chart_requests["MSFT"] >= 3
    assert "1 symbols rate limited; waiting" in caplog.text


def test_a_rate_limit_that_does_not_lift_stops_the_batch_without_more_requests(
    yahoo_server: YahooServer, fake: FakeYahoo
) -> None:
    fake.charts["NVDA"] = fixture("rate_limited.txt", status=429)
    fake.charts["AAPL"] = fixture("chart_AAPL_2024-05.json", by_period=True)
    fake.charts["PETR4.SA"] = petr4_chart()
    source = batch_source(yahoo_server, timeout=2.0, chunk_size=1, max_workers=1, attempts=3)

    started = time.perf_counter()
    result = source.fetch_many([FetchRequest(symbol=name) for name in ("NVDA", "AAPL", "PETR4.SA")])
    elapsed = time.perf_counter() - started

    assert result.fetched == {}
    assert set(result.failed) == {"NVDA", "AAPL", "PETR4.SA"}
    assert all(isinstance(error, RateLimitedError) for error in result.failed.values())
    assert all(error.transient for error in result.failed.values())
    # Three tries of NVDA, with two waits between them; nothing asked about the others.
    assert fake.chart_requests["NVDA"] >= 3
    assert "AAPL" not in fake.chart_requests
    assert "PETR4.SA" not in fake.chart_requests
    assert elapsed >= 0.02 + 0.04


def test_a_slow_symbol_times_out_alone_in_a_concurrent_batch(
    yahoo_server: YahooServer, fake: FakeYahoo
) -> None:
    fake.charts["XOM"] = fixture("chart_AAPL_2024-05.json", delay_s=20.0)
    fake.charts["AAPL"] = fixture("chart_AAPL_2024-05.json", by_period=True)
    fake.charts["PETR4.SA"] = petr4_chart()
    source = batch_source(yahoo_server, timeout=0.5, chunk_size=10, max_workers=3)

    result = source.fetch_many(
        [
            FetchRequest(symbol="XOM", start=dt.date(2024, 5, 6), end=dt.date(2024, 5, 17)),
            FetchRequest(symbol="AAPL", start=dt.date(2024, 5, 6), end=dt.date(2024, 5, 17)),
            FetchRequest(symbol="PETR4.SA", start=dt.date(2018, 12, 17), end=dt.date(2019, 1, 4)),
        ]
    )

    assert sorted(result.fetched) == ["AAPL", "PETR4.SA"]
    assert len(result.fetched["PETR4.SA"].bars) == 11
    assert isinstance(result.failed["XOM"], SourceTimeoutError)


def test_invalid_symbols_in_a_batch_are_refused_before_any_request(
    fake: FakeYahoo, source: YFinanceSource
) -> None:
    result = source.fetch_many(
        [
            FetchRequest(symbol="../etc/passwd"),
            FetchRequest(symbol="PETR4..SA"),
            FetchRequest(symbol="PETR4.SA", exchange="B3"),
        ]
    )

    assert result.fetched == {}
    assert set(result.failed) == {"../etc/passwd", "PETR4..SA", "PETR4.SA"}
    assert fake.seen == []


def test_fetch_batch_uses_the_sources_own_batching(fake: FakeYahoo, source: YFinanceSource) -> None:
    fake.charts["PETR4.SA"] = petr4_chart()
    assert isinstance(source, BatchPriceSource)

    result = fetch_batch(
        source,
        [FetchRequest(symbol="PETR4.SA", start=dt.date(2019, 1, 2), end=dt.date(2019, 1, 4))],
    )

    assert result.fetched["PETR4.SA"].listing is not None
    assert len(result.fetched["PETR4.SA"].bars) == 3
