"""The latest-forecast cache: ETag matching, invalidation racing a fill, the safety TTL."""

from __future__ import annotations

from web.cache import ForecastCache, etag_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_etag_is_derived_from_the_content() -> None:
    assert etag_for(b'{"a":1}') == etag_for(b'{"a":1}')
    assert etag_for(b'{"a":1}') != etag_for(b'{"a":2}')
    assert etag_for(b"x").startswith('"') and etag_for(b"x").endswith('"')


def test_if_none_match_uses_weak_comparison_and_lists() -> None:
    entry = ForecastCache(ttl_s=60).put("DIS", b"body", generation=0)
    assert entry.matches(entry.etag)
    assert entry.matches(f"W/{entry.etag}")
    assert entry.matches(f'"other", {entry.etag}')
    assert entry.matches("*")
    assert not entry.matches('"other"')
    assert not entry.matches(None)
    assert not entry.matches("")


def test_entries_carry_their_encoded_headers() -> None:
    entry = ForecastCache(ttl_s=60, cache_control="public, max-age=60").put(
        "DIS", b'{"a":1}', generation=0
    )
    headers = dict(entry.ok_headers)
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == b"7"
    assert headers[b"etag"] == entry.etag.encode()
    assert headers[b"cache-control"] == b"public, max-age=60"
    assert dict(entry.not_modified_headers) == {
        b"etag": entry.etag.encode(),
        b"cache-control": b"public, max-age=60",
    }


def test_hit_after_put_and_miss_after_invalidation() -> None:
    cache = ForecastCache(ttl_s=60)
    assert cache.get("DIS") is None
    cache.put("DIS", b"one", generation=cache.generation("DIS"))
    hit = cache.get("DIS")
    assert hit is not None and hit.body == b"one"
    cache.invalidate("DIS")
    assert cache.get("DIS") is None
    assert (cache.hits, cache.misses) == (1, 2)


def test_a_fill_that_started_before_an_invalidation_is_not_kept() -> None:
    cache = ForecastCache(ttl_s=60)
    generation = cache.generation("DIS")  # a reader starts loading the old forecast...
    cache.invalidate("DIS")  # ...a forecast.ready arrives meanwhile...
    answered = cache.put("DIS", b"old", generation=generation)  # ...the old one comes back
    assert answered.body == b"old"  # still the answer for that request
    assert cache.get("DIS") is None  # but not cached: the next read fetches the new forecast
    cache.put("DIS", b"new", generation=cache.generation("DIS"))
    assert cache.get("DIS") is not None


def test_invalidation_is_per_symbol() -> None:
    cache = ForecastCache(ttl_s=60)
    cache.put("DIS", b"d", generation=0)
    cache.put("KO", b"k", generation=0)
    cache.invalidate("DIS")
    assert cache.get("DIS") is None
    assert cache.get("KO") is not None
    assert len(cache) == 1


def test_entries_expire_after_the_ttl() -> None:
    clock = FakeClock()
    cache = ForecastCache(ttl_s=10, clock=clock)
    cache.put("DIS", b"d", generation=0)
    clock.now = 9.9
    assert cache.get("DIS") is not None
    clock.now = 10.0
    assert cache.get("DIS") is None
