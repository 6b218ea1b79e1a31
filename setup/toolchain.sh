#!/usr/bin/env bash
# pgfleet offline toolchain: the Pulumi engine, provider plugins, a Vault-API server, an S3
# store, a Docker engine and the local images (what the dev stack needs); with --cluster, also
# what the prod stack and setup/cluster.sh need: the pulumi-kubernetes plugin and a single-node
# Kubernetes. Idempotent; everything built is cached by version and content under $PGFLEET_CACHE
# (default /var/cache/pgfleet) and linked into $PGFLEET_BIN_DIR (default /usr/local/bin); what
# the machine already has (pulumi, plugins, a Docker engine, a cluster in KUBECONFIG) is used.
# See setup/README.md.
#
# Usage: setup/toolchain.sh [--cluster]
#        PGFLEET_ONLY=pulumi,providers setup/toolchain.sh
#        PGFLEET_SKIP=images setup/toolchain.sh
# Steps: pulumi langhost yamlhost docker providers vaultserver versitygw images actionlint
#        (--cluster) kubernetes-provider node-packages containerd kube pause
# Exit status: 0 when every step is ok/cached or UNAVAILABLE (the module proxy refuses a module
# version: reported, not fatal); 1 when a step failed for another reason.
set -euo pipefail

SETUP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$SETUP_DIR/versions.env"
# shellcheck source=lib/common.sh
source "$SETUP_DIR/lib/common.sh"
for _step_file in "$SETUP_DIR"/steps/*.sh; do
  # shellcheck source=/dev/null
  source "$_step_file"
done
unset _step_file

ONLY="${PGFLEET_ONLY:-}"
SKIP="${PGFLEET_SKIP:-}"
want() { # want STEP: is this step selected?
  local s="$1"
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$s,"* ]]; then return 1; fi
  if [[ ",$SKIP," == *",$s,"* ]]; then return 1; fi
  return 0
}

# A step runs in a child process (run_step): `toolchain.sh __step FUNC ARGS...`
if [ "${1:-}" = __step ]; then
  shift
  "$@"
  exit 0
fi
# fd 3 = the terminal/CI log of the top-level run; step output goes to per-step logs.
exec 3>&2

main() {
local cluster=0
case "${1:-}" in
  --cluster) cluster=1 ;;
  "") ;;
  *) echo "usage: $0 [--cluster]" >&2; return 2 ;;
esac
T_START=$SECONDS
if want pulumi; then run_step "pulumi CLI" "$LOGS/pulumi-cli.log" step_pulumi; fi
if want langhost; then run_step "pulumi-language-python" "$LOGS/langhost.log" step_langhost; fi
if want yamlhost; then run_step "pulumi-language-yaml $PULUMI_YAML_VERSION" "$LOGS/yamlhost.log" step_yamlhost; fi
if want docker; then run_step "docker engine" "$LOGS/docker.log" step_docker; fi
if want providers; then
  command -v jq >/dev/null 2>&1 || apt_install jq
  run_step "provider postgresql $PROVIDER_POSTGRESQL_VERSION" "$LOGS/provider-postgresql.log" \
    build_bridged postgresql "$PROVIDER_POSTGRESQL_VERSION" "$UPSTREAM_POSTGRESQL" \
    github.com/terraform-providers/terraform-provider-postgresql
  run_step "provider postgresql stand-in" "$LOGS/provider-postgresql-standin.log" step_pgsubset
  run_step "provider random $PROVIDER_RANDOM_VERSION" "$LOGS/provider-random.log" \
    build_bridged random "$PROVIDER_RANDOM_VERSION" "$UPSTREAM_RANDOM" \
    github.com/terraform-providers/terraform-provider-random
  run_step "provider docker $PROVIDER_DOCKER_VERSION" "$LOGS/provider-docker.log" \
    build_bridged docker "$PROVIDER_DOCKER_VERSION" "$UPSTREAM_DOCKER" \
    github.com/terraform-providers/terraform-provider-docker no_compose
  run_step "provider vault $PROVIDER_VAULT_VERSION" "$LOGS/provider-vault.log" \
    build_bridged vault "$PROVIDER_VAULT_VERSION" "$UPSTREAM_VAULT" \
    github.com/hashicorp/terraform-provider-vault
fi
if want vaultserver; then run_step "vault-API server" "$LOGS/vaultserver.log" step_vaultserver; fi
if want versitygw; then run_step "versitygw $VERSITYGW_VERSION" "$LOGS/versitygw.log" step_versitygw; fi
if want images; then
  if docker info >/dev/null 2>&1; then
    run_step "image $PGFLEET_BASE_IMAGE" "$LOGS/image-base.log" step_base_image
    run_step "image $PGFLEET_POSTGRES_IMAGE" "$LOGS/image-postgres.log" \
      step_postgres_image 15 "$PGFLEET_POSTGRES_IMAGE" "$PGFLEET_BASE_IMAGE"
    run_step "image $PGFLEET_POSTGRES17_BASE_IMAGE" "$LOGS/image-base-$PGFLEET_POSTGRES17_SUITE.log" \
      step_base_image "$PGFLEET_POSTGRES17_SUITE" "$PGFLEET_POSTGRES17_BASE_IMAGE"
    run_step "image $PGFLEET_POSTGRES17_IMAGE" "$LOGS/image-postgres17.log" \
      step_postgres_image 17 "$PGFLEET_POSTGRES17_IMAGE" "$PGFLEET_POSTGRES17_BASE_IMAGE"
    run_step "image $PGFLEET_PGBOUNCER_IMAGE" "$LOGS/image-pgbouncer.log" build_image pgbouncer "$PGFLEET_PGBOUNCER_IMAGE" "$SETUP_DIR/images/shared/pgfleet-reload-on-change"
    run_step "image $PGFLEET_EXPORTER_IMAGE" "$LOGS/image-postgres-exporter.log" build_image postgres-exporter "$PGFLEET_EXPORTER_IMAGE"
    run_step "image $PGFLEET_REDIS_IMAGE" "$LOGS/image-redis.log" build_image redis "$PGFLEET_REDIS_IMAGE"
    run_step "image $PGFLEET_OPENBAO_IMAGE" "$LOGS/image-openbao.log" step_openbao_image
    run_step "image $PGFLEET_VERSITYGW_IMAGE" "$LOGS/image-versitygw.log" step_versitygw_image
  else
    record "images" FAILED 0 "docker engine not answering"
    FAILED=1
  fi
fi
if want prometheus; then run_step "prometheus (Debian)" "$LOGS/prometheus.log" step_prometheus; fi
if want actionlint; then run_step "actionlint $ACTIONLINT_VERSION" "$LOGS/actionlint.log" step_actionlint; fi
if [ "$cluster" = 1 ]; then
  if want kubernetes-provider; then
    command -v jq >/dev/null 2>&1 || apt_install jq
    run_step "provider kubernetes $PROVIDER_KUBERNETES_VERSION" "$LOGS/provider-kubernetes.log" step_provider_kubernetes
  fi
  if want node-packages; then run_step "node packages" "$LOGS/node-packages.log" step_node_packages; fi
  if want containerd; then run_step "containerd $CONTAINERD_VERSION" "$LOGS/containerd.log" step_containerd; fi
  if want kube; then run_step "kubernetes $KUBERNETES_VERSION" "$LOGS/kube.log" step_kube; fi
  if want pause; then run_step "image $PGFLEET_PAUSE_IMAGE" "$LOGS/image-pause.log" step_pause_image; fi
  if want operator-crds; then
    run_step "prometheus-operator CRDs $PROMETHEUS_OPERATOR_VERSION" "$LOGS/operator-crds.log" step_operator_crds
  fi
fi

echo "pgfleet toolchain ($((SECONDS - T_START))s; cache $CACHE; links in $BIN_DIR):"
printf '  %s\n' "${SUMMARY[@]}"
echo "  env: source $SETUP_DIR/env.sh"
return "$FAILED"
}

# Everything runs from inside a function, so bash has parsed the whole file before any step
# starts (editing the script while it runs cannot derail it).
main "$@"
exit $?
