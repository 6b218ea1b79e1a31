#!/usr/bin/env bash
# Installs what the tests need and runs them: the unit tier (Pulumi mocks) and the integration
# tier (the real engine, PostgreSQL, a Vault server and Docker, from setup/toolchain.sh, which
# is idempotent and takes seconds once its cache is warm). Extra arguments go to pytest, e.g.
# `bash scripts/test.sh tests/unit -k vault`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r requirements.txt
bash setup/toolchain.sh
exec python3 -m pytest "$@"
