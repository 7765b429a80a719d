#!/usr/bin/env bash
# The README's test command: install everything, then lint, type-check, check the layer contracts
# and run the whole suite on SQLite and PostgreSQL. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install.sh dev
scripts/install-system-packages.sh
export STOCKCAST_TEST_POSTGRES_URL=${STOCKCAST_TEST_POSTGRES_URL:-$(scripts/ensure-postgres.sh)}

echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy"
.venv/bin/mypy
echo "==> import contracts (DESIGN.md's layers)"
.venv/bin/lint-imports
echo "==> pytest (PostgreSQL: ${STOCKCAST_TEST_POSTGRES_URL:-NOT RUN})"
# One pytest worker per core (pytest-xdist), each test file on one worker so that a module's
# trained fixtures are built once: on 2 cores the suite took 13 min against about 33 min serially.
.venv/bin/pytest -n auto --dist loadfile --durations=15 "$@"
