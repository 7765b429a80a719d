"""The yfinance source, tested through yfinance's and curl_cffi's own code with canned Yahoo answers.

Only the network edge is fake: a local HTTPS server plays every Yahoo host (cookie, crumb, chart,
quote), and the session reaches it through curl's RESOLVE and PORT options, so each request goes
through yfinance's request building, cookie/crumb dance, JSON parsing and auto-adjustment, and
through a real curl transfer with real timeouts. The canned payloads are in ``fixtures/yahoo``.
"""

from __future__ import annotations

import datetime as dt
import json
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

from forecasting.sources import (
    NoDataError,
    RateLimitedError,
    SourceError,
    SourceTimeoutError,
    SourceUnavailableError,
    UnknownSymbolError,
    make_source,
)
from forecasting.sources.yahoo import YahooSession, YFinanceSource, yfinance_cache_dir

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
    """What the fake Yahoo answers, per symbol, and every request it saw."""

    charts: dict[str, Canned] = field(default_factory=dict)
    quote_summaries: dict[str, Canned] = field(default_factory=dict)
    seen: list[SeenRequest] = field(default_factory=list)
    closing: threading.Event = field(default_factory=threading.Event)

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
            canned = self.charts.get(symbol, fixture("chart_not_found.json", status=404))
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

    cache_dir = Path(yfinance_cache_dir())
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
