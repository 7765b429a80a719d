"""The symbol page's "What is served, and why": from the latest forecast's ``serving`` block, in
a real browser against ``python -m web`` on a real database holding a served plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from db.engine import create_async_db_engine, create_session_factory
from db.repositories import (
    ForecastRepository,
    ForecastStepRecord,
    NewServedPlan,
    ServedPlanRepository,
    SymbolRepository,
)
from forecasting.calendar import DEFAULT_EXCHANGE
from forecasting.candidates import IntervalRecipe
from forecasting.conformal import CalibrationState
from forecasting.plan import plan_evidence
from forecasting.volatility import EwmaScale
from tests.integration.web.test_dashboard_browser import (
    TIMEOUT_MS,
    _run,
    _serve,
    chromium,  # noqa: F401  (the fixture)
    playwright_sync,
)

pytestmark = pytest.mark.slow

REASON = "the LSTM does not beat both naive and drift (one-sided DM); serving naive+ewma"
BACKTEST = {
    "windows": 126,
    "horizon": 2,
    "selected": "naive+ewma",
    "candidates": {
        "naive+ewma": {
            "coverage_80": 0.794,
            "coverage_95": 0.952,
            "interval_score_80": 6.5,
            "interval_score_95": 9.25,
            "dm": {
                "interval_score_vs_naive_sigma60": {
                    "p_one_sided_better": 0.031,
                    "p_two_sided": 0.062,
                }
            },
        }
    },
    "references": {"naive+sigma60": {"interval_score_80": 7.0, "interval_score_95": 10.5}},
}


async def _seed(database_url: str) -> int:
    engine = create_async_db_engine(database_url)
    sessions = create_session_factory(engine)
    recipe = IntervalRecipe(
        scale_kind="ewma",
        scale=EwmaScale(),
        state=CalibrationState.initial(np.linspace(0.1, 2.5, 60).reshape(30, 2)),
        point="naive",
    )
    try:
        async with sessions.begin() as session:
            await SymbolRepository(session).add(
                symbol="DIS", exchange=DEFAULT_EXCHANGE, horizon=2, lookback=10
            )
            plan = await ServedPlanRepository(session).add(
                NewServedPlan(
                    symbol="DIS",
                    model_version_id=None,
                    candidate="naive+ewma",
                    point="naive",
                    scale="ewma",
                    uses_network=False,
                    recalibrated=False,
                    reason=REASON,
                    recipe=recipe.to_dict(),
                    evidence=plan_evidence(BACKTEST, "naive+ewma"),
                )
            )
            today = datetime.now(UTC).date()
            await ForecastRepository(session).add_batch(
                symbol="DIS",
                model_version_id=None,
                model_kind="naive",
                issued_at=datetime.now(UTC) - timedelta(hours=1),
                last_observed_date=today - timedelta(days=1),
                last_close=100.0,
                steps=[
                    ForecastStepRecord(
                        step=step,
                        target_date=today + timedelta(days=step),
                        point=100.0,
                        lower_80=98.0,
                        upper_80=102.0,
                        lower_95=96.0,
                        upper_95=104.0,
                        naive=100.0,
                    )
                    for step in (1, 2)
                ],
                served_plan_id=plan.id,
            )
            return plan.id
    finally:
        await engine.dispose()


def test_the_symbol_page_says_what_is_served_and_why(
    database_url: str,
    tmp_path: Path,
    chromium: Any,  # noqa: F811
) -> None:
    _run(_seed(database_url))
    expect = playwright_sync.expect
    expect.set_options(timeout=TIMEOUT_MS)
    with _serve(database_url, tmp_path) as base:
        page = chromium.new_page()
        page.goto(f"{base}/ui/symbols/DIS")
        section = page.locator("#serving-body")
        expect(section).to_contain_text("naive+ewma")
        expect(section).to_contain_text(REASON)
        expect(section).to_contain_text("from prices alone")
        coverage = page.locator("#serving-coverage tbody tr")
        expect(coverage).to_have_count(2)
        expect(coverage.nth(0)).to_contain_text("80%")
        scores = page.locator("#serving-scores tbody tr")
        expect(scores.nth(1)).to_contain_text("10.5")
        evidence = page.locator("#serving-body details li")
        expect(evidence).to_have_count(2)
        expect(evidence.nth(0)).to_contain_text("interval_score_vs_naive_sigma60")
        expect(evidence.nth(0)).to_contain_text("one-sided")
        expect(evidence.nth(1)).to_contain_text("two-sided")
