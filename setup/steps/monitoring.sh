# shellcheck shell=bash
# Prometheus and promtool, Debian's package: the tests scrape the dev stack with a real
# Prometheus and check the alert rules with promtool. One already on PATH is used as it is.

step_prometheus() {
  if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    echo "found|$(command -v prometheus) ($(prometheus --version 2>&1 | awk 'NR==1 {print $3}'))"
    return 0
  fi
  # The package starts its service when it can: a policy-rc.d refusal keeps it from doing so
  # (the tests run their own Prometheus, on a port of their own).
  local policy=/usr/sbin/policy-rc.d placed=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && placed=1
  fi
  local rc=0
  apt_install prometheus || rc=$?
  [ "$placed" = 1 ] && rm -f "$policy"
  [ "$rc" = 0 ] || return "$rc"
  echo "installed|$(command -v prometheus)"
}

# The Prometheus Operator's PodMonitor and PrometheusRule CRDs, as its release ships them, into
# $CACHE/crds/prometheus-operator (the module proxy serves the module; nothing is built).
step_operator_crds() {
  local out="$CACHE/crds/prometheus-operator" v="$PROMETHEUS_OPERATOR_VERSION"
  if [ -s "$out/$v/monitoring.coreos.com_podmonitors.yaml" ]; then echo "cached|$out/$v"; return 0; fi
  local dir
  dir="$(moddir "github.com/prometheus-operator/prometheus-operator@$v")"
  [ -d "$dir/example/prometheus-operator-crd" ] || { echo "no CRDs in the module at $v" >&2; return 1; }
  mkdir -p "$out/$v"
  cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml" \
     "$dir/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" "$out/$v/"
  ln -sfn "$v" "$out/current"
  echo "fetched|$out/$v"
}
