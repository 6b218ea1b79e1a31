#!/usr/bin/env bash
# Installs what the tests need and runs them: the unit tier (Pulumi mocks), the integration tier
# (the real engine, PostgreSQL, a Vault server and Docker) and the cluster tier (a real
# Kubernetes cluster). setup/toolchain.sh is idempotent and takes seconds once its cache is warm.
# The cluster is the one KUBECONFIG names when it answers; otherwise setup/cluster.sh's, started
# here (and stopped again afterwards if it was not running before).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/unit -k vault`. Without a path or
# a selection, the cluster tier (and the seed examples) run beside the other two in a second
# pytest (the cluster's containerd and Docker are separate engines), its report printed after theirs.
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

whole_suite=true
for arg in "$@"; do
  case "$arg" in -k|-m|--lf|--last-failed|[!-]*) whole_suite=false ;; esac
done
if [ "$whole_suite" != true ] || [ -n "${PGFLEET_TEST_SERIAL:-}" ]; then
  python3 -m pytest "$@"  # not exec: the EXIT trap stops a cluster started here
  exit
fi

# The seed examples' stacks (Docker) ride with the cluster tier, so that both processes take
# about as long (measured: cluster 25 min, unit and integration 36 min with the seeds in it).
beside=(tests/cluster tests/integration/test_seed_examples.py)
cluster_log="$(mktemp)"
python3 -m pytest "$@" "${beside[@]}" >"$cluster_log" 2>&1 &
cluster_pid=$!
status=0
python3 -m pytest "$@" tests/unit tests/integration --ignore=tests/integration/test_seed_examples.py || status=$?
cluster_status=0
wait "$cluster_pid" || cluster_status=$?
echo "=== the cluster tier (tests/cluster) and the seed examples, run beside the tiers above"
cat "$cluster_log"
rm -f "$cluster_log"
echo "unit and integration tiers: exit $status; cluster tier and seed examples: exit $cluster_status"
[ "$status" = 0 ] && [ "$cluster_status" = 0 ]
