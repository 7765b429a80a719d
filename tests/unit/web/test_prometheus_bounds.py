"""The scrape's database figures keep a bounded number of series however long the watchlist:
quantiles of the forecast age, a count of stale symbols, and only the oldest few by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from web.prometheus import OLDEST_SHOWN, ApiMetrics

NOW = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


def _samples(metrics: ApiMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = metrics.render().decode()
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_a_thousand_symbols_make_a_bounded_number_of_series() -> None:
    metrics = ApiMetrics()
    # Symbol k's forecast is k hours old: 0 h .. 999 h.
    issued = {f"S{k:04d}": NOW - timedelta(hours=k) for k in range(1000)}
    metrics.set_database_figures(now=NOW, issued_at=issued, jobs_by_status={})

    quantiles = _samples(metrics, "stockcast_forecast_age_seconds")
    assert {dict(labels)["quantile"]: value / 3600 for labels, value in quantiles.items()} == {
        "0": 0,
        "0.5": 500,  # nearest rank of 999 * 0.5 = 499.5 -> 500
        "0.9": 899,
        "0.99": 989,
        "1": 999,
    }
    oldest = _samples(metrics, "stockcast_oldest_forecast_age_seconds")
    assert len(oldest) == OLDEST_SHOWN
    assert {dict(labels)["symbol"] for labels in oldest} == {f"S{k:04d}" for k in range(990, 1000)}
    # Older than 4 days (96 h): 97 h .. 999 h.
    assert _samples(metrics, "stockcast_forecasts_stale") == {(): 903}


def test_a_scrape_replaces_the_previous_figures() -> None:
    metrics = ApiMetrics()
    metrics.set_database_figures(
        now=NOW, issued_at={"OLD": NOW - timedelta(days=9)}, jobs_by_status={}
    )
    metrics.set_database_figures(now=NOW, issued_at={"NEW": NOW}, jobs_by_status={})
    oldest = _samples(metrics, "stockcast_oldest_forecast_age_seconds")
    assert [dict(labels)["symbol"] for labels in oldest] == ["NEW"]
    assert _samples(metrics, "stockcast_forecasts_stale") == {(): 0}


def test_an_empty_watchlist_reports_no_ages() -> None:
    metrics = ApiMetrics()
    metrics.set_database_figures(now=NOW, issued_at={}, jobs_by_status={})
    assert _samples(metrics, "stockcast_forecast_age_seconds") == {}
    assert _samples(metrics, "stockcast_forecasts_stale") == {(): 0}
