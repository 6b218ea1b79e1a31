# shellcheck shell=bash
# What setup/cluster.sh runs: Kubernetes, etcd, CoreDNS and pgfleet's NetworkPolicy enforcer
# (setup/go/kube, one wrapper module), containerd, the host packages (runc, CNI plugins,
# nftables) and the pause image. Skipped when KUBECONFIG already reaches a cluster.

# external_cluster: KUBECONFIG names a reachable cluster that is not ours (then nothing is built)
external_cluster() {
  [ -n "${KUBECONFIG:-}" ] && [ "$(readlink -f "$KUBECONFIG")" != "$(readlink -f "$CACHE/cluster/admin.kubeconfig")" ] \
    && command -v kubectl >/dev/null 2>&1 \
    && kubectl --request-timeout=5s get --raw /readyz >/dev/null 2>&1
}

kube_dir() { # where this source and these pins build to
  local h
  h="$(hash_of "$SETUP_DIR/go/kube")"
  h="$(printf '%s %s %s %s' "$h" "$KUBERNETES_VERSION" "$ETCD_VERSION" "$COREDNS_VERSION" | sha256sum | cut -c1-12)"
  echo "$CACHE/bin/kube/$KUBERNETES_VERSION-$h"
}

# One module for the four programs of setup/go/kube, so they share one dependency graph (and
# Go's build cache): kube (the multi-call control plane and node), coredns, netpol and pause.
step_kube() {
  if external_cluster; then echo "skipped|KUBECONFIG reaches a cluster: nothing to build"; return 0; fi
  local out status=cached
  out="$(kube_dir)"
  if [ ! -x "$out/pgfleet-kube" ] || [ ! -x "$out/pgfleet-netpol" ]; then
    status=built
    local b="$CACHE/build/kube" k8s v="${KUBERNETES_VERSION#v1.}"
    rm -rf "$b"; mkdir -p "$b" "$out"
    cp -r "$SETUP_DIR/go/kube/." "$b/"
    k8s="$(moddir "k8s.io/kubernetes@$KUBERNETES_VERSION")"
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
    # ./staging/...; a dependency's replaces are ignored, so they are restated here.
    {
      printf 'module pgfleet.local/build/kube\n\ngo 1.26\n\n%s\n\n' "$(grep '^godebug' "$k8s/go.mod")"
      printf 'require (\n\tk8s.io/kubernetes %s\n\tgo.etcd.io/etcd/server/v3 %s\n\tgithub.com/coredns/coredns %s\n)\n\nreplace (\n' \
        "$KUBERNETES_VERSION" "$ETCD_VERSION" "$COREDNS_VERSION"
      sed -n "s#^\t\(k8s.io/[a-z0-9-]*\) v0\.0\.0\$#\t\1 => \1 v0.$v#p" "$k8s/go.mod"
      printf ')\n'
    } >"$b/go.mod"
    local ldflags="-s -w" key
    for key in gitVersion=$KUBERNETES_VERSION gitMajor=1 gitMinor="${v%%.*}" gitTreeState=clean \
      buildDate="$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
      ldflags+=" -X k8s.io/component-base/version.$key"
    done
    log "building Kubernetes $KUBERNETES_VERSION, etcd, CoreDNS, netpol (long on 2 cores; log $LOGS/kube.log)"
    # the enforcer's rule tests gate the build: a wrong rule would open or close the wrong ports
    (cd "$b" && go mod tidy && $NICE go test ./netpol/ \
      && $NICE go build -trimpath -tags providerless -ldflags "$ldflags" -o "$out/" ./...) >&2
    for key in kube coredns netpol pause; do mv "$out/$key" "$out/pgfleet-$key"; done
    prune_siblings "$out" "$CACHE/bin/kube/$KUBERNETES_VERSION-*"
  fi
  ln -sfn "$out" "$CACHE/bin/kube/current"
  echo "$status|$out ($("$out/pgfleet-kube" version))"
}

# containerd, its runc shim and ctr, from the module proxy (no replaces).
step_containerd() {
  if external_cluster; then echo "skipped|KUBECONFIG reaches a cluster: nothing to build"; return 0; fi
  local v="$CONTAINERD_VERSION" out="$CACHE/bin/containerd/$CONTAINERD_VERSION" status=cached
  if [ ! -x "$out/containerd" ] || [ ! -x "$out/containerd-shim-runc-v2" ] || [ ! -x "$out/ctr" ]; then
    status=built
    local b="$CACHE/build/containerd-$v" c
    rm -rf "$b"; mkdir -p "$b" "$out"
    printf 'module pgfleet.local/build/containerd\n\ngo 1.26.6\n\nrequire github.com/containerd/containerd/v2 %s\n' "$v" >"$b/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "github.com/containerd/containerd/v2/cmd/containerd"\n\t_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"\n\t_ "github.com/containerd/containerd/v2/cmd/ctr"\n)\n' >"$b/tools.go"
    log "building containerd $v (log $LOGS/containerd.log)"
    (cd "$b" && go mod tidy) >&2
    for c in containerd containerd-shim-runc-v2 ctr; do
      (cd "$b" && $NICE go build -trimpath -tags "no_btrfs no_zfs no_devmapper" \
        -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$v" \
        -o "$out/$c.tmp" "github.com/containerd/containerd/v2/cmd/$c") >&2
      mv "$out/$c.tmp" "$out/$c"
    done
    rm -rf "$b"
  fi
  echo "$status|$out ($("$out/containerd" --version | awk '{print $3}'))"
}

# Debian's runc, CNI plugins (bridge, host-local, loopback, portmap) and nft.
step_node_packages() {
  if external_cluster; then echo "skipped|KUBECONFIG reaches a cluster"; return 0; fi
  local status=cached
  if ! command -v runc >/dev/null || [ ! -x /usr/lib/cni/bridge ] || ! command -v nft >/dev/null \
     || ! command -v iptables >/dev/null; then
    apt_install runc containernetworking-plugins nftables iptables
    status=installed
  fi
  echo "$status|runc $(runc --version | awk 'NR==1{print $3}'), CNI plugins in /usr/lib/cni, $(nft --version)"
}

# The pod sandbox image, from setup/go/kube/pause, under the name containerd asks for.
step_pause_image() {
  if external_cluster; then echo "skipped|KUBECONFIG reaches a cluster"; return 0; fi
  local bin h
  bin="$(kube_dir)/pgfleet-pause"
  [ -x "$bin" ] || { echo "no pause binary (step kube)" >&2; return 1; }
  h="$(hash_of "$bin")"
  if [ "$(image_hash "$PGFLEET_PAUSE_IMAGE")" = "$h" ]; then echo "cached|$PGFLEET_PAUSE_IMAGE"; return 0; fi
  local ctx="$CACHE/build/pause-image"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$bin" "$ctx/pause"
  tar -C "$ctx" --owner=0 --group=0 -c pause | docker import \
    --change "LABEL org.pgfleet.hash=$h" --change 'ENTRYPOINT ["/pause"]' --change 'USER 65535:65535' \
    - "$PGFLEET_PAUSE_IMAGE" >&2
  rm -rf "$ctx"
  echo "built|$PGFLEET_PAUSE_IMAGE"
}
