#!/usr/bin/env bash
# Installs what the tests need and runs them: the unit tier (Pulumi mocks), the integration tier
# (the real engine, PostgreSQL, a Vault server and Docker) and the cluster tier (a real
# Kubernetes cluster). setup/toolchain.sh is idempotent and takes seconds once its cache is warm.
# The cluster is the one KUBECONFIG names when it answers; otherwise setup/cluster.sh's, started
# here (and stopped again afterwards if it was not running before).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/unit -k vault`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r requirements.txt
bash setup/toolchain.sh --cluster

if [ -n "${KUBECONFIG:-}" ] && python3 -m tests.support.cluster 2>/dev/null; then
  echo "cluster tier: the cluster in KUBECONFIG ($KUBECONFIG)"
else
  if ! bash setup/cluster.sh status >/dev/null 2>&1; then
    trap 'bash setup/cluster.sh down' EXIT
  fi
  bash setup/cluster.sh up
  eval "$(bash setup/cluster.sh env)"
fi
python3 -m pytest "$@"
