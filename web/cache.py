"""The in-process cache of encoded latest-forecast responses: the hot path of the API.

A latest forecast changes only when the scheduler issues a new one, which it announces with a
``forecast.ready`` event; the event tailer (:mod:`web.events`) then invalidates the symbol here. So
a read costs a dict lookup instead of a database round trip (one SQLite read per request cuts the
request rate about eightfold on a small machine). A time-to-live backs the events up, should the
tailer ever fall behind.

Invalidation races a fill: a reader that misses, reads the old forecast from the database and
stores it *after* the invalidation would pin a stale entry. Each symbol therefore has a generation
that invalidation bumps; a fill stores its result only if the generation it started from is still
current.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """An encoded JSON body with its strong ETag, and the raw ASGI headers of the 200 and 304
    answers, encoded once when the entry is stored rather than on every read."""

    body: bytes
    etag: str
    stored_at: float
    ok_headers: tuple[tuple[bytes, bytes], ...]
    not_modified_headers: tuple[tuple[bytes, bytes], ...]

    def matches(self, if_none_match: str | None) -> bool:
        """Whether an ``If-None-Match`` header names this entity (weak comparison, RFC 9110)."""
        if not if_none_match:
            return False
        if if_none_match.strip() == "*":
            return True
        for candidate in if_none_match.split(","):
            tag = candidate.strip()
            if tag.startswith("W/"):
                tag = tag[2:]
            if tag == self.etag:
                return True
        return False


def etag_for(body: bytes) -> str:
    """A strong validator derived from the content, so every API process agrees on it."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class ForecastCache:
    """Encoded latest forecasts by symbol, invalidated by events, bounded by a TTL."""

    def __init__(
        self,
        *,
        ttl_s: float,
        cache_control: str = "no-cache",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_s
        self.cache_control = cache_control
        self._clock = clock
        self._entries: dict[str, CachedResponse] = {}
        self._generations: dict[str, int] = {}
        self.hits = 0
        self.misses = 0

    def get(self, symbol: str) -> CachedResponse | None:
        entry = self._entries.get(symbol)
        if entry is not None and self._clock() - entry.stored_at < self._ttl:
            self.hits += 1
            return entry
        self.misses += 1
        return None

    def generation(self, symbol: str) -> int:
        """Read before loading from the database; hand back to :meth:`put`."""
        return self._generations.get(symbol, 0)

    def put(self, symbol: str, body: bytes, *, generation: int) -> CachedResponse:
        """Cache ``body`` unless ``symbol`` was invalidated since ``generation`` was read; the
        response is returned either way (it is still the right answer for this request)."""
        etag = etag_for(body)
        validators = ((b"etag", etag.encode()), (b"cache-control", self.cache_control.encode()))
        entry = CachedResponse(
            body=body,
            etag=etag,
            stored_at=self._clock(),
            ok_headers=(
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *validators,
            ),
            not_modified_headers=validators,
        )
        if self._generations.get(symbol, 0) == generation:
            self._entries[symbol] = entry
        return entry

    def invalidate(self, symbol: str) -> None:
        self._generations[symbol] = self._generations.get(symbol, 0) + 1
        self._entries.pop(symbol, None)

    def __len__(self) -> int:
        return len(self._entries)
