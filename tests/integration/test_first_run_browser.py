"""What a new user sees first: ``stockcast up`` on the default (the bundled sample, SPY watched,
the market replay on) shows on SPY's page, within three minutes of the command, forecasts that
matured against the actual closes and a realised-accuracy row, in headless Chromium (Debian's,
driven by Playwright), under the simulated date of the replay. A screenshot goes to
``artifacts/screenshots/first-run-spy.png``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
#: What the issue promises: within three minutes of ``make up``.
BUDGET_S = 180.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _up(cwd: Path) -> Iterator[tuple[str, float]]:
    """``stockcast up --source sample --watch SPY`` (what ``make up`` runs), every other setting
    at its default; yields the base URL and when the command started."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKCAST_")}
    env["STOCKCAST_DATA_DIR"] = str(cwd / "var")
    command = [sys.executable, "-m", "stockcast", "up", "--source", "sample", "--watch", "SPY"]
    started = time.monotonic()
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = started + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, "stockcast up exited"
            try:
                if httpx.get(f"{base}/symbols/SPY", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield base, started
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def test_the_spy_page_shows_matured_forecasts_and_realised_accuracy(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"the browser test needs Debian's chromium at {CHROMIUM}")
    with _up(tmp_path) as (base, started), playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(f"{base}/ui/symbols/SPY")
            left_ms = max(1_000.0, (BUDGET_S - (time.monotonic() - started)) * 1000)
            # A next-day forecast checked against the close that followed: a price in the
            # "Actual" column (the third), and a row of the realised-accuracy table.
            page.wait_for_function(
                """() => {
                  const actual = document.querySelector('#history-table tbody tr td:nth-of-type(2)');
                  const accuracy = document.querySelector('#accuracy-table tbody tr td:nth-of-type(2)');
                  return actual && /\\d/.test(actual.textContent)
                    && accuracy && /\\d/.test(accuracy.textContent);
                }""",
                timeout=left_ms,
            )
            elapsed = time.monotonic() - started
            history = page.locator("#history-table tbody tr").first.inner_text()
            accuracy = page.locator("#accuracy-table tbody tr").first.inner_text()
            replay = page.locator("#replay-status").inner_text()
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "first-run-spy.png"), full_page=True)
        finally:
            browser.close()
    print(
        f"\nfirst run: matured forecasts and realised accuracy on SPY's page after {elapsed:.0f} s"
    )
    assert elapsed <= BUDGET_S
    assert replay.startswith("replay") and "2020-" in replay
    assert history.strip() and accuracy.strip()
