#!/usr/bin/env bash
# The test command: sets up (idempotent, seconds when nothing changed), then lint, types and the test suite.
# Extra arguments go to pytest, e.g. `scripts/test.sh -k sync -x`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/setup.sh
venv="${ALPAMAYO_VENV:-$here/.venv}"
export PATH="$venv/bin:$PATH"

echo "[test] ruff"
ruff check src test scripts launch
ruff format --check src test scripts launch
echo "[test] mypy src/"
mypy
echo "[test] pytest"
# pytest exits 5 when it collected no test: under `set -e` that fails the run, as it must.
python -m pytest "$@"
