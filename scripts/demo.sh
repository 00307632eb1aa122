#!/usr/bin/env bash
# Set up and run the main job on embedded defaults: a synthetic night calibrated and published
# to a local WWT repository (SQLite, Prefect's ephemeral API).   ./scripts/demo.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${VIRTUAL_ENV:-}" ]]; then
    [[ -x .venv/bin/python ]] || python3 -m venv .venv
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e . -c constraints.txt  # the tested versions
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=120
astroflow demo "${1:-astroflow-demo}"
