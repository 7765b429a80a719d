#!/usr/bin/env bash
# The README's main command: install stockcast into .venv (with the MLflow server, for the
# `mlflow ui` command the banner prints), then run the whole service in one process
# (`stockcast up`) on the embedded default: SQLite and a local MLflow store under ./var, offline on
# the bundled sample prices, watching SPY. Arguments replace those defaults, e.g.
#   scripts/up.sh --source yfinance --watch AAPL,MSFT
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh server
if (($# == 0)); then
  set -- --source sample --watch SPY
fi
exec .venv/bin/stockcast up "$@"
