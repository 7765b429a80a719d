#!/usr/bin/env bash
# Create .venv and install stockcast into it, idempotently.
#   scripts/install.sh              the service
#   scripts/install.sh server       plus the MLflow server and UI (`make up`)
#   scripts/install.sh dev          plus the test tools, which include the server (`make test`)
# torch==2.13.0 goes in first: on this kind of machine pip takes its CPU wheel from the local disk,
# and the project's own `torch>=2.2` is then already satisfied, so nothing pulls a CUDA build.
#
# One marker, .venv/.stockcast-installed, lists the extras installed from the current pyproject.toml.
# A run that asks for nothing more than it lists, with pyproject.toml no newer, installs and prints
# nothing: `make test` then `make up` installs once. Anything new is installed together with what the
# marker lists, so an install never drops an extra an earlier one added.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=.venv
marker=$venv/.stockcast-installed

wanted=()
for extra in "$@"; do
  case $extra in
    server) wanted+=(server) ;;
    dev) wanted+=(dev server) ;; # pyproject.toml: the dev extra includes stockcast[server]
    *) echo "scripts/install.sh: unknown extra '$extra' (expected server or dev)" >&2; exit 2 ;;
  esac
done

if [[ ! -x $venv/bin/python ]]; then
  echo "==> creating $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "==> installing torch 2.13.0 (CPU)"
  "${pip[@]}" install -q "torch==2.13.0"
fi

installed=()
[[ -f $marker ]] && { read -ra installed <"$marker" || true; }
fresh=false
[[ -f $marker && ! pyproject.toml -nt $marker ]] && fresh=true
missing=false
for extra in "${wanted[@]}"; do
  [[ " ${installed[*]} " == *" $extra "* ]] || missing=true
done

if [[ $fresh == false || $missing == true ]]; then
  read -ra extras < <(printf '%s\n' "${installed[@]}" "${wanted[@]}" | sed '/^$/d' | sort -u | tr '\n' ' ') || true
  target=.
  if ((${#extras[@]})); then
    target=".[$(
      IFS=,
      echo "${extras[*]}"
    )]"
  fi
  echo "==> installing stockcast ${extras[*]:+(${extras[*]}) }into $venv"
  "${pip[@]}" install -q -e "$target"
  echo "${extras[*]}" >"$marker"
  rm -f "$venv"/.stockcast-installed-* # the per-extra markers of earlier versions
fi
