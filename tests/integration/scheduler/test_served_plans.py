"""The served plan in the pipeline: a retrain records what the gate selected (with its interval
recipe and calibration state) in the database; the forecast job serves it, so a volatility shock
in the stored prices widens the next interval and calm narrows it; the evaluate job feeds matured
forecasts to its adaptive conformal state exactly once; a restarted scheduler continues from the
stored state; a demoted champion stops serving.

The models are real and tiny, trained in-process once per module (the retrain job's child
process adds nothing here: its recording path, ``record_training_outcome``, is the one used)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from db.kinds import JobKind
from db.models import JobStatus, ModelStatus
from db.repositories import (
    BarRecord,
    ForecastRepository,
    JobRepository,
    ModelVersionRepository,
    PriceRepository,
    ServedPlanRepository,
)
from forecasting.calendar import trading_days_after
from forecasting.candidates import IntervalRecipe
from forecasting.promotion import PromotionPolicy
from forecasting.sources import make_source
from forecasting.training import TrainingOutcome, train_challenger
from scheduler.conversions import frame_to_records
from scheduler.model_records import record_training_outcome
from tests.integration.scheduler.conftest import ROWS, TINY_TRAINING, SchedulerHarness, copy_prices

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SYMBOL = "DIS"


def _train(prices: Path, policy: PromotionPolicy, *, head: str) -> TrainingOutcome:
    bars = make_source(f"csv:{prices}").fetch(SYMBOL, None, None)
    return train_challenger(
        symbol=SYMBOL,
        bars=bars,
        model_config=replace(TINY_TRAINING.model, head=head),
        train_config=replace(TINY_TRAINING.train, ensemble=1),
        backtest_config=replace(TINY_TRAINING.backtest, test_size=60),
        policy=policy,
        champion=None,
        tracking_uri=None,
    )


@pytest.fixture(scope="module")
def module_prices(tmp_path_factory: pytest.TempPathFactory, shared_prices_dir: Path) -> Path:
    directory = tmp_path_factory.mktemp("plan-prices")
    copy_prices(shared_prices_dir, directory, SYMBOL, rows=ROWS)
    return directory


@pytest.fixture(scope="module")
def simple_outcome(module_prices: Path) -> TrainingOutcome:
    """The evidence gate on a tiny point-head LSTM: it serves a simple candidate (naive or
    drift with a volatility model computed from prices)."""
    outcome = _train(module_prices, PromotionPolicy.EVIDENCE, head="point")
    assert not outcome.decision.promote, outcome.decision.reason
    return outcome


@pytest.fixture(scope="module")
def lstm_outcome(module_prices: Path) -> TrainingOutcome:
    """Policy 'always': the tiny LSTM is promoted and its own point is served."""
    outcome = _train(module_prices, PromotionPolicy.ALWAYS, head="student_t")
    assert outcome.decision.promote and outcome.decision.point == "lstm"
    return outcome


async def _store_bars(harness: SchedulerHarness, module_prices: Path) -> list[BarRecord]:
    records = frame_to_records(make_source(f"csv:{module_prices}").fetch(SYMBOL, None, None))
    async with harness.sessions.begin() as session:
        await PriceRepository(session).upsert(SYMBOL, records)
    return records


async def _append_moves(harness: SchedulerHarness, moves: list[float]) -> None:
    """New sessions after the last stored bar, each close ``exp(move)`` times the one before."""
    async with harness.sessions() as session:
        last = await PriceRepository(session).load(SYMBOL, last=1)
    close = last[-1].close
    days = trading_days_after(last[-1].date, len(moves))
    bars = []
    for day, move in zip(days, moves, strict=True):
        new = close * math.exp(move)
        bars.append(
            BarRecord(
                date=day,
                open=close,
                high=max(close, new),
                low=min(close, new),
                close=new,
                adj_close=new,
                volume=1e6,
            )
        )
        close = new
    async with harness.sessions.begin() as session:
        await PriceRepository(session).upsert(SYMBOL, bars)


async def _run(harness: SchedulerHarness, client: object, kind: JobKind) -> None:
    job_id = await harness.enqueue(client, kind, {"symbol": SYMBOL}, symbol=SYMBOL)  # type: ignore[arg-type]

    async def finished() -> bool:
        async with harness.sessions() as session:
            row = await JobRepository(session).get(job_id, refresh=True)
        return row.status not in (JobStatus.QUEUED, JobStatus.RUNNING)

    await harness.wait_for(finished, within=60, what=f"the {kind.value} job")
    async with harness.sessions() as session:
        row = await JobRepository(session).get(job_id, refresh=True)
    assert row.status is JobStatus.SUCCEEDED, row.error


async def _watch(harness: SchedulerHarness) -> None:
    from db.repositories import SymbolRepository
    from forecasting.calendar import DEFAULT_EXCHANGE

    async with harness.sessions.begin() as session:
        await SymbolRepository(session).add(
            symbol=SYMBOL,
            exchange=DEFAULT_EXCHANGE,
            horizon=harness.horizon,
            lookback=harness.lookback,
        )


def _width(rows: list, step: int = 1) -> float:
    row = rows[step - 1]
    return float(np.log(row.upper_95 / row.lower_95))


async def _latest(harness: SchedulerHarness) -> list:
    async with harness.sessions() as session:
        return list(await ForecastRepository(session).latest(SYMBOL))


async def _plan(harness: SchedulerHarness):  # type: ignore[no-untyped-def]
    async with harness.sessions() as session:
        return await ServedPlanRepository(session).current(SYMBOL)


async def test_a_retrain_records_the_plan_the_gate_selected(
    harness: SchedulerHarness, module_prices: Path, simple_outcome: TrainingOutcome
) -> None:
    await _watch(harness)
    recorded = await record_training_outcome(
        harness.sessions, symbol=SYMBOL, outcome=simple_outcome, params={}
    )
    plan = await _plan(harness)
    decision = simple_outcome.decision
    assert plan is not None and recorded.served_plan_id == plan.id
    assert plan.model_version_id == recorded.model_version_id
    assert (plan.candidate, plan.point, plan.scale) == (
        decision.selected,
        decision.point,
        decision.scale,
    )
    assert plan.point in ("naive", "drift") and not plan.uses_network
    assert plan.recipe == simple_outcome.artifact.metadata["serving"]["intervals"]
    figures = simple_outcome.backtest["candidates"][decision.selected]
    assert plan.evidence["backtest"]["coverage_80"] == pytest.approx(figures["coverage_80"])
    assert plan.evidence["naive_reference"]["candidate"] == "naive+sigma60"
    assert {entry["sided"] for entry in plan.evidence["dm"]} == {"one-sided", "two-sided"}


async def test_volatility_shock_widens_the_served_interval_and_calm_narrows_it(
    harness: SchedulerHarness, module_prices: Path, simple_outcome: TrainingOutcome
) -> None:
    await _watch(harness)
    await _store_bars(harness, module_prices)
    await record_training_outcome(
        harness.sessions, symbol=SYMBOL, outcome=simple_outcome, params={}
    )
    plan = await _plan(harness)
    assert plan is not None
    async with harness.node(), harness.client() as client:
        await _run(harness, client, JobKind.FORECAST)
        before = await _latest(harness)
        assert {row.served_plan_id for row in before} == {plan.id}
        # Ten sessions of 6% moves, alternating: the stored prices turn violent.
        await _append_moves(harness, [0.06 * (-1) ** k for k in range(10)])
        await _run(harness, client, JobKind.FORECAST)
        shocked = await _latest(harness)
        # Then three months of calm (0.1% moves).
        await _append_moves(harness, [0.001 * (-1) ** k for k in range(63)])
        await _run(harness, client, JobKind.FORECAST)
        calm = await _latest(harness)
    for step in range(1, harness.horizon + 1):
        assert _width(shocked, step) > 1.5 * _width(before, step)
        assert _width(calm, step) < 0.5 * _width(shocked, step)
    # Still the same plan, the same candidate: the scale model, run over the stored bars, moved.
    assert {row.served_plan_id for row in shocked + calm} == {plan.id}
    assert calm[0].model_kind == simple_outcome.decision.selected


async def test_aci_learns_from_matured_forecasts_once_and_a_restart_continues(
    harness: SchedulerHarness, module_prices: Path, simple_outcome: TrainingOutcome
) -> None:
    await _watch(harness)
    await _store_bars(harness, module_prices)
    await record_training_outcome(
        harness.sessions, symbol=SYMBOL, outcome=simple_outcome, params={}
    )
    initial = IntervalRecipe.from_dict((await _plan(harness)).recipe).state
    days = 6
    async with harness.node(), harness.client() as client:
        for _ in range(days):
            await _run(harness, client, JobKind.FORECAST)
            # Big moves: the outcomes fall outside the 80% intervals issued for them.
            await _append_moves(harness, [0.08])
            await _run(harness, client, JobKind.EVALUATE)
        learnt = IntervalRecipe.from_dict((await _plan(harness)).recipe).state
        # Evaluating again matures nothing new: the state does not move.
        await _run(harness, client, JobKind.EVALUATE)
        again = IntervalRecipe.from_dict((await _plan(harness)).recipe).state
    assert again == learnt
    # Forecast d matures step h after h more sessions: sum over d of min(H, days - d) outcomes.
    horizon = harness.horizon
    expected = sum(min(horizon, days - d) for d in range(days))
    assert learnt.matured == initial.matured + expected
    level = learnt.levels.index(0.8)
    # Misses lower alpha_t below its nominal 0.2 (wider intervals), step 1 most of all.
    assert learnt.alphas[0][level] < initial.alphas[0][level] - 0.01

    # A new scheduler node (nothing kept in memory) continues from the stored state. It
    # forecasts twice from the same last bar (a re-run): one observation, fed back once.
    async with harness.node(), harness.client() as client:
        await _run(harness, client, JobKind.FORECAST)
        await _run(harness, client, JobKind.FORECAST)
        issued = await _latest(harness)
        await _append_moves(harness, [0.08])
        await _run(harness, client, JobKind.EVALUATE)
    resumed = IntervalRecipe.from_dict((await _plan(harness)).recipe).state
    widths = learnt.half_widths()
    for row in issued:
        assert row.calibration is not None
        assert row.calibration["issued"] == pytest.approx(
            [float(widths[level_][row.step - 1]) for level_ in learnt.levels]
        )
    assert resumed.matured == learnt.matured + horizon
    assert resumed.alphas[0][level] < learnt.alphas[0][level]


async def test_a_demoted_champion_stops_serving(
    harness: SchedulerHarness,
    module_prices: Path,
    simple_outcome: TrainingOutcome,
    lstm_outcome: TrainingOutcome,
) -> None:
    await _watch(harness)
    await _store_bars(harness, module_prices)
    first = await record_training_outcome(
        harness.sessions, symbol=SYMBOL, outcome=lstm_outcome, params={}
    )
    async with harness.node(), harness.client() as client:
        await _run(harness, client, JobKind.FORECAST)
        by_champion = await _latest(harness)
        assert {row.model_version_id for row in by_champion} == {first.model_version_id}
        assert by_champion[0].model_kind == lstm_outcome.decision.selected.split("+")[0]
        # The next retrain's gate demotes the champion: it no longer beats the best simple model
        # on the windows after its training data (the verdict as forecasting.gate gives it).
        demoting = replace(
            simple_outcome,
            decision=replace(simple_outcome.decision, champion="demoted"),
        )
        second = await record_training_outcome(
            harness.sessions, symbol=SYMBOL, outcome=demoting, params={}
        )
        await _run(harness, client, JobKind.FORECAST)
        after = await _latest(harness)
    async with harness.sessions() as session:
        versions = ModelVersionRepository(session)
        assert await versions.champion(SYMBOL) is None
        old = await versions.get(first.model_version_id)
    assert old.status is ModelStatus.RETIRED and "demoted" in (old.status_reason or "")
    plan = await _plan(harness)
    assert plan is not None and plan.id == second.served_plan_id
    assert plan.candidate == simple_outcome.decision.selected
    assert {row.served_plan_id for row in after} == {plan.id}
    assert {row.model_version_id for row in after} == {None}
    assert after[0].model_kind == simple_outcome.decision.selected
    assert after[0].issued_at > by_champion[0].issued_at
    assert isinstance(after[0].last_observed_date, date)


async def test_the_payload_says_what_is_served_and_agrees_with_the_stored_plan(
    harness: SchedulerHarness, module_prices: Path, simple_outcome: TrainingOutcome
) -> None:
    from litestar.testing import AsyncTestClient

    from tests.integration.web.conftest import make_config
    from web.app import create_app

    await _watch(harness)
    await _store_bars(harness, module_prices)
    recorded = await record_training_outcome(
        harness.sessions, symbol=SYMBOL, outcome=simple_outcome, params={}
    )
    async with harness.node(), harness.client() as client:
        for move in (0.08, 0.0005, 0.0005, -0.08):
            await _run(harness, client, JobKind.FORECAST)
            await _append_moves(harness, [move])
            await _run(harness, client, JobKind.EVALUATE)
        await _run(harness, client, JobKind.FORECAST)
    plan = await _plan(harness)
    assert plan is not None
    state = IntervalRecipe.from_dict(plan.recipe).state
    async with harness.sessions() as session:
        matured = [
            row
            for row in await ForecastRepository(session).evaluated(SYMBOL)
            if row.served_plan_id == plan.id
        ]
    app = create_app(make_config(harness.database_url, harness.prices_dir))
    async with AsyncTestClient(app) as api:
        body = (await api.get(f"/symbols/{SYMBOL}/forecast")).json()
        detail = (await api.get(f"/models/{recorded.model_version_id}")).json()

    serving = body["serving"]
    assert serving["plan_id"] == plan.id
    assert (serving["candidate"], serving["point"], serving["scale"]) == (
        plan.candidate,
        plan.point,
        plan.scale,
    )
    assert serving["reason"] == simple_outcome.decision.reason
    assert serving["model_version_id"] == recorded.model_version_id
    assert serving["evidence"] and {e["sided"] for e in serving["evidence"]} == {
        "one-sided",
        "two-sided",
    }
    names = {e["test"] for e in serving["evidence"]}
    assert "interval_score_vs_naive_sigma60" in names
    calibration = serving["calibration"]
    figures = simple_outcome.backtest["candidates"][plan.candidate]
    assert calibration["coverage_80"]["nominal"] == 0.8
    assert calibration["coverage_80"]["backtest"] == pytest.approx(figures["coverage_80"])
    assert calibration["coverage_95"]["backtest"] == pytest.approx(figures["coverage_95"])
    assert calibration["interval_score_95"] == pytest.approx(figures["interval_score_95"])
    naive = simple_outcome.backtest["references"]["naive+sigma60"]
    assert calibration["naive_interval_score_95"] == pytest.approx(naive["interval_score_95"])
    # Live coverage: the plan's matured steps, as the history shows them.
    assert calibration["live_matured"] == len(matured) > 0
    inside = sum(row.lower_80 <= row.actual <= row.upper_80 for row in matured)
    assert calibration["coverage_80"]["live"] == pytest.approx(inside / len(matured))
    level = state.levels.index(0.8)
    assert calibration["aci_alpha"]["0.8"] == pytest.approx([row[level] for row in state.alphas])
    assert calibration["aci_matured"] == state.matured > 0
    # /models/{id} lists the candidates of the version's backtest, the selected one marked.
    listed = {c["name"]: c for c in detail["candidates"]}
    assert set(listed) == set(simple_outcome.backtest["candidates"])
    assert detail["selected"] == plan.candidate and listed[plan.candidate]["selected"] is True
    assert listed[plan.candidate]["coverage_80"] == pytest.approx(figures["coverage_80"])


async def test_a_kept_champion_without_a_plan_gets_one_from_its_artifact(
    harness: SchedulerHarness,
    module_prices: Path,
    simple_outcome: TrainingOutcome,
    lstm_outcome: TrainingOutcome,
) -> None:
    """A champion recorded before plans existed: the first retrain that keeps it plans what it
    serves from its own artifact, and the forecast job serves that plan with the network."""
    from db.repositories import NewModelVersion

    await _watch(harness)
    await _store_bars(harness, module_prices)
    async with harness.sessions.begin() as session:
        versions = ModelVersionRepository(session)
        old = await versions.add(
            NewModelVersion(
                symbol=SYMBOL,
                weights=lstm_outcome.artifact.weights,
                metadata=lstm_outcome.artifact.metadata,
                backtest=lstm_outcome.backtest,
            )
        )
        await versions.promote(old.id)
    assert await _plan(harness) is None
    keeping = replace(
        simple_outcome,
        decision=replace(
            simple_outcome.decision, selected="champion", champion="kept", point="", scale=""
        ),
    )
    recorded = await record_training_outcome(
        harness.sessions, symbol=SYMBOL, outcome=keeping, params={}
    )
    plan = await _plan(harness)
    assert plan is not None and recorded.served_plan_id == plan.id
    assert plan.model_version_id == old.id and plan.uses_network
    assert plan.recipe == lstm_outcome.artifact.metadata["intervals"]
    async with harness.node(), harness.client() as client:
        await _run(harness, client, JobKind.FORECAST)
    rows = await _latest(harness)
    assert {row.served_plan_id for row in rows} == {plan.id}
    assert {row.model_version_id for row in rows} == {old.id}
    # A second retrain that keeps it again leaves its plan (and its learnt state) alone.
    again = await record_training_outcome(
        harness.sessions, symbol=SYMBOL, outcome=keeping, params={}
    )
    assert again.served_plan_id is None and (await _plan(harness)).id == plan.id


async def test_a_new_scheduler_process_continues_from_the_stored_state(
    harness: SchedulerHarness,
    module_prices: Path,
    simple_outcome: TrainingOutcome,
    tmp_path: Path,
) -> None:
    """The calibration lives only in the database: a separate ``python -m scheduler`` process
    learns from where the previous node stopped, and a process killed after its evaluate leaves
    a state the next process does not feed again."""
    import signal

    from tests.integration.scheduler.test_scheduler_processes import Node

    await _watch(harness)
    await _store_bars(harness, module_prices)
    await record_training_outcome(
        harness.sessions, symbol=SYMBOL, outcome=simple_outcome, params={}
    )
    async with harness.node(), harness.client() as client:
        for _ in range(3):
            await _run(harness, client, JobKind.FORECAST)
            await _append_moves(harness, [0.08])
            await _run(harness, client, JobKind.EVALUATE)
    learnt = IntervalRecipe.from_dict((await _plan(harness)).recipe).state
    assert learnt.matured > 0

    options = ("--poll-seconds", "0.2", "--shutdown-seconds", "5")
    first = Node("plan-a", harness.database_url, tmp_path, *options)
    try:
        await first.wait_started()
        async with harness.client() as client:
            await _run(harness, client, JobKind.FORECAST)
            await _append_moves(harness, [0.08])
            await _run(harness, client, JobKind.EVALUATE)
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=30)
    resumed = IntervalRecipe.from_dict((await _plan(harness)).recipe).state
    level = learnt.levels.index(0.8)
    assert resumed.matured == learnt.matured + harness.horizon
    assert resumed.alphas[0][level] < learnt.alphas[0][level]

    second = Node("plan-b", harness.database_url, tmp_path, *options)
    try:
        await second.wait_started()
        async with harness.client() as client:
            await _run(harness, client, JobKind.EVALUATE)
    finally:
        assert second.stop() == 0, second.output()
    assert IntervalRecipe.from_dict((await _plan(harness)).recipe).state == resumed
