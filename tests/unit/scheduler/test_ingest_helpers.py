"""Ingest's pure parts: where a backfill starts, frame conversion, and spotting a re-adjusted
history (a split or dividend rescales every past bar at the source)."""

from __future__ import annotations

from datetime import date

from db.repositories import BarRecord
from forecasting.sources import SAMPLE_DIRECTORY, CsvSource
from scheduler.conversions import frame_to_records, records_to_bars
from scheduler.ingest import backfill_start, history_rescaled


def _bar(day: date, close: float) -> BarRecord:
    return BarRecord(
        date=day, open=close, high=close, low=close, close=close, adj_close=None, volume=1.0
    )


def test_backfill_goes_back_whole_years_even_from_a_leap_day() -> None:
    assert backfill_start(date(2026, 11, 25), 10) == date(2016, 11, 25)
    assert backfill_start(date(2024, 2, 29), 1) == date(2023, 2, 28)


def test_frame_to_records_keeps_every_value_of_a_real_file() -> None:
    frame = CsvSource(SAMPLE_DIRECTORY).fetch("SPY", date(2019, 9, 1), date(2019, 9, 30))
    records = frame_to_records(frame)
    assert len(records) == len(frame) > 15
    assert records[0].date == date(2019, 9, 3)  # 2 September was Labor Day
    assert records[-1].close == float(frame["close"].iloc[-1])
    assert all(r.adj_close is None for r in records)  # the file's adj_close is empty
    assert all(r.low <= min(r.open, r.close) <= max(r.open, r.close) <= r.high for r in records)
    # And back: the same frame, dtypes included.
    assert records_to_bars(records).equals(frame)


def test_a_changed_past_close_means_the_history_was_rescaled() -> None:
    stored = {date(2025, 1, 2): 100.0, date(2025, 1, 3): 101.0}
    same = [
        _bar(date(2025, 1, 2), 100.0),
        _bar(date(2025, 1, 3), 101.0),
        _bar(date(2025, 1, 6), 99.0),
    ]
    assert not history_rescaled(stored, same)
    halved = [_bar(date(2025, 1, 2), 50.0), _bar(date(2025, 1, 3), 50.5)]
    assert history_rescaled(stored, halved)
    # Only the dates both sides know are compared; float noise is not a rescale.
    assert not history_rescaled(stored, [_bar(date(2025, 1, 3), 101.0 + 1e-9)])
    assert not history_rescaled({}, halved)
