#!/usr/bin/env bash
# Create .venv and install stockcast into it, idempotently.
#   scripts/install.sh          the service
#   scripts/install.sh dev      the service plus the test tools
# torch==2.13.0 goes in first: on this kind of machine pip takes its CPU wheel from the local disk,
# and the project's own `torch>=2.2` is then already satisfied, so nothing pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."

extra=${1:-}
python=${PYTHON:-python3}
venv=.venv

if [[ ! -x $venv/bin/python ]]; then
  echo "==> creating $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "==> installing torch 2.13.0 (CPU)"
  "${pip[@]}" install -q "torch==2.13.0"
fi

target="."
[[ $extra == dev ]] && target=".[dev]"
stamp="$venv/.stockcast-installed${extra:+-$extra}"
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "==> installing stockcast ${extra:+($extra) }into $venv"
  "${pip[@]}" install -q -e "$target"
  touch "$stamp"
fi
