#!/usr/bin/env bash
# The real Azure CLI (azure-cli from PyPI) in a cached virtualenv outside the checkout, for tests and for
# `fleetflow local az`. Prints the path of the `az` executable. Idempotent: a second run only checks the stamp.
#
#   FLEETFLOW_AZ_VENV   where the virtualenv lives (default ~/.cache/fleetflow/az-venv)
#   FLEETFLOW_AZ_VERSION the azure-cli version (default below)
#   PYTHON              interpreter for the virtualenv (default python3.11, else python3)
#
# The Fleet extension (`az fleet`) is not published on PyPI (extensions come from an index `az extension add`
# downloads from); it is not installed here.
set -euo pipefail
version="${FLEETFLOW_AZ_VERSION:-2.91.0}"
venv="${FLEETFLOW_AZ_VENV:-$HOME/.cache/fleetflow/az-venv}"
stamp="$venv/.installed-azure-cli-$version"
if [ -f "$stamp" ] && [ -x "$venv/bin/az" ]; then
  echo "$venv/bin/az"
  exit 0
fi
python="${PYTHON:-}"
if [ -z "$python" ]; then
  python="$(command -v python3.11 || command -v python3)"
fi
start=$(date +%s)
mkdir -p "$(dirname "$venv")"
test -x "$venv/bin/python" || "$python" -m venv "$venv" >&2
"$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip >&2
"$venv/bin/pip" install -q --disable-pip-version-check "azure-cli==$version" >&2
touch "$stamp"
echo "azure-cli $version installed in $venv in $(( $(date +%s) - start )) s" >&2
echo "$venv/bin/az"
