"""``GET /replay`` and the dashboard's header show the market replay's simulated date."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from db.contracts import ReplayAdvanced
from db.repositories import EventRepository


def _advance(db: Any, session: date, *, finished: bool = False) -> None:
    async def work(db_session: AsyncSession) -> None:
        await EventRepository(db_session).append(
            ReplayAdvanced(
                session=session,
                index=6430,
                total=6461,
                first=date(1995, 1, 3),
                last=date(2020, 8, 28),
                finished=finished,
            )
        )

    db.run(work)


def test_without_a_replay_it_says_so(client: TestClient[Any]) -> None:
    replay = client.get("/replay").json()
    assert replay["active"] is False
    assert replay["session"] is None and replay["label"] is None
    assert "replay-status" not in client.get("/").text


def test_the_simulated_date_is_shown_by_the_api_the_pages_and_the_events(
    client: TestClient[Any], db: Any
) -> None:
    _advance(db, date(2020, 7, 13))
    _advance(db, date(2020, 7, 14))

    replay = client.get("/replay").json()
    assert replay["active"] is True
    assert replay["session"] == "2020-07-14"
    assert replay["label"] == "replay: 2020-07-14"
    assert (replay["position"], replay["total"], replay["finished"]) == (6431, 6461, False)
    for page in ("/", "/ui/symbols/SPY"):
        html = client.get(page).text
        assert 'id="replay-status"' in html
        assert ">replay: 2020-07-14</p>" in html

    # The pages subscribe to the event (the stream sends every stored event; its own tests).
    assert "replay.advanced" in client.get("/").text.split('data-event-types="')[1].split('"')[0]


def test_the_end_of_the_data_is_announced(client: TestClient[Any], db: Any) -> None:
    _advance(db, date(2020, 8, 28), finished=True)
    replay = client.get("/replay").json()
    assert replay["label"] == "replay finished: 2020-08-28"
    assert replay["finished"] is True
    assert 'data-finished="true"' in client.get("/").text
