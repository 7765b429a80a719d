"""The market replay's state as the API shows it (``GET /replay``, the dashboard's header)."""

from __future__ import annotations

from datetime import date

import msgspec


class ReplayOut(msgspec.Struct, frozen=True, kw_only=True):
    """Where the simulated market clock stands; ``active`` is false when no replay ever ran."""

    active: bool
    #: The simulated session: the newest bar the source reveals, "today" for every job.
    session: date | None = None
    #: ``replay: 2020-07-14`` (``replay finished: ...`` at the end of the data).
    label: str | None = None
    #: Sessions replayed so far (1-based) and in all the data holds.
    position: int | None = None
    total: int | None = None
    first: date | None = None
    last: date | None = None
    finished: bool = False
