"""The add form's hint names symbols the price source has, not tickers it may lack."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient


def test_the_hint_names_the_static_sources_symbols(
    client: TestClient[Any], prices_dir: Any
) -> None:
    html = client.get("/").text
    hint = html.split('id="add-symbol-hint"', 1)[1].split("</p>", 1)[0]
    # The test source: the shared prices plus the files conftest adds.
    files = sorted(path.name.removesuffix(".csv") for path in prices_dir.glob("*.csv"))
    shown = ", ".join(files[:8])
    assert f"The price source has {shown} and {len(files) - 8} more" in hint


def test_the_sample_names_its_four(make_client: Any) -> None:
    with make_client(source="sample") as client:
        hint = client.get("/").text.split('id="add-symbol-hint"', 1)[1].split("</p>", 1)[0]
    assert "The price source has AAPL, GOOG, INTC, SPY." in hint
    assert "DIS" not in hint
