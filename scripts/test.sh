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
# Then, alone, the tests marked ``serial``: they time processes running at once, which other
# tests on the same cores can starve (once under xdist, of two nodes with a training slot each,
# the second took its training only when the first had finished).
# Exit status 5 is "no test selected": arguments that name only one kind of test.
parallel=0
.venv/bin/pytest -n auto --dist loadfile -m "not serial" --durations=15 "$@" || parallel=$?
alone=0
.venv/bin/pytest -m serial "$@" || alone=$?
for status in "$parallel" "$alone"; do
    [ "$status" -eq 0 ] || [ "$status" -eq 5 ] || exit "$status"
done
[ "$parallel" -eq 0 ] || [ "$alone" -eq 0 ] || exit 5
