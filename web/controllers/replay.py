"""``/replay``: the simulated market date of a replay (``stockcast up`` on the sample)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from web.dependencies import provide_replay, provider
from web.schemas.problems import READ_ERRORS, problem_responses
from web.schemas.replay import ReplayOut
from web.services.replay import ReplayService


class ReplayController(Controller):
    path = "/replay"
    tags = ["replay"]  # noqa: RUF012 - Litestar reads these class attributes
    dependencies = {"replay": provider(provide_replay)}  # noqa: RUF012

    @get(
        "/",
        summary="The market replay's simulated date",
        description=(
            "With a market replay (the default of `stockcast up` on the bundled sample), the "
            "simulated session every job treats as today: the newest bar the source reveals. "
            "`active` is false when no replay has run on this database."
        ),
        responses=problem_responses(*READ_ERRORS),
        cache=False,
    )
    async def replay_state(self, replay: NamedDependency[ReplayService]) -> ReplayOut:
        return await replay.state()
