#!/usr/bin/env bash
# Install everything the tests need from the project's own files, then run the whole suite.
#   ./scripts/test.sh [pytest args...]
# Uses .venv (made here if absent) unless a virtual environment is already active.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${VIRTUAL_ENV:-}" ]]; then
    [[ -x .venv/bin/python ]] || python3 -m venv .venv
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e '.[test]' -c constraints.txt  # the tested versions
# Azurite (the Azure Storage emulator), pinned in package.json + package-lock.json.
npm ci --no-audit --no-fund --loglevel=error

set +e
python -m pytest "$@"
code=$?
set -e
if [[ $code -eq 5 ]]; then
    echo "pytest collected no tests: that is a failure here" >&2
    exit 1
fi
exit $code
