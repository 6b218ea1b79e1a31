#!/usr/bin/env bash
# Installs the Python dependencies (a no-op when present) and runs the test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/unit -k vault`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r requirements.txt
exec python3 -m pytest "$@"
