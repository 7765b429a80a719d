"""Fixtures of the integration tests: the shared test data beside the checkout.

Unit tests never read it (they run on a bare clone, on the bundled sample and generated data);
integration tests and benchmarks may.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA_ENV = "STOCKCAST_SHARED_DATA"


def shared_data_candidates() -> list[Path]:
    """Where the shared test data may be: ``$STOCKCAST_SHARED_DATA``, else ``shared/data`` beside
    the checkout (``../shared/data`` from the project's root), else that folder on this kind of
    machine (``/work/shared/data``), for a clone made somewhere else."""
    repo = Path(__file__).resolve().parents[2]
    candidates = [repo.parent / "shared" / "data", Path("/work/shared/data")]
    if os.environ.get(SHARED_DATA_ENV):
        candidates.insert(0, Path(os.environ[SHARED_DATA_ENV]))
    return candidates


@pytest.fixture(scope="session")
def shared_prices_dir() -> Path:
    """``../shared/data/prices``: real daily prices for tests (never shipped in the product)."""
    for candidate in shared_data_candidates():
        if (candidate / "prices").is_dir():
            return candidate / "prices"
    tried = ", ".join(str(c) for c in shared_data_candidates())
    raise RuntimeError(f"test data missing: no prices/ folder in {tried} (set {SHARED_DATA_ENV})")
