"""The reference for ``bench/api.py``: a bare Litestar app with one GET route that returns a
precomputed forecast-sized JSON body, no database, no middleware. What the framework and the
server cost before stockcast adds anything; served by granian as ``bench.bare_app:app``."""

from __future__ import annotations

from litestar import Litestar, Response, get

_BODY = (
    b'{"symbol":"T000","model":{"kind":"naive","version":null},"issued_at":"2026-01-02T00:00:00Z",'
    b'"last_observed_date":"2026-01-01","currency":"USD","steps":['
    + b",".join(
        b'{"step":%d,"target_date":"2026-01-0%d","point":50.0,"lower_80":49.0,"upper_80":51.0,'
        b'"lower_95":48.5,"upper_95":51.5,"naive":50.0}' % (step, step + 1)
        for step in range(1, 6)
    )
    + b"]}"
)


@get("/symbols/{symbol:str}/forecast", sync_to_thread=False)
def forecast(symbol: str) -> Response[bytes]:
    return Response(_BODY, media_type="application/json")


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


app = Litestar([forecast, health])
