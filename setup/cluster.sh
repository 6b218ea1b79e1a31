#!/usr/bin/env bash
# pgfleet's single-node Kubernetes cluster, for the prod stack's tests and for people:
# etcd, kube-apiserver, controller-manager (with the host-path volume provisioner), scheduler,
# a kubelet on containerd, kube-proxy (nftables), CoreDNS and NetworkPolicy enforcement, all as
# host processes of the binaries `setup/toolchain.sh --cluster` builds. Pods run for real.
#
# Usage: setup/cluster.sh up | down | status | env
#   up      start what is not running (idempotent), load the local images, wait for a Ready node
#   down    stop everything, pods included; state (etcd, volumes, certificates) stays
#   status  each process, the API and the node; exit 0 only when all are up
#   env     the exports that point kubectl and Pulumi at the cluster
# State: $PGFLEET_CACHE/cluster (default /var/cache/pgfleet/cluster); admin.kubeconfig there.
set -euo pipefail

SETUP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$SETUP_DIR/versions.env"

CACHE="${PGFLEET_CACHE:-/var/cache/pgfleet}"
STATE="$CACHE/cluster"
RUN=/run/pgfleet-cluster
PKI="$STATE/pki"
LOGS="$STATE/logs"
KUBE_BIN="$CACHE/bin/kube/current"
CONTAINERD_BIN="$CACHE/bin/containerd/$CONTAINERD_VERSION"
KUBECONFIG_ADMIN="$STATE/admin.kubeconfig"

NODE_NAME=pgfleet
BRIDGE=pgfleet0
POD_CIDR="${PGFLEET_POD_CIDR:-10.244.0.0/24}"
NODE_IP="${POD_CIDR%.*}.1"                 # the node's address on the pod bridge
SERVICE_CIDR="${PGFLEET_SERVICE_CIDR:-10.96.0.0/16}"
_service_base="${SERVICE_CIDR%/*}"
API_SERVICE_IP="${_service_base%.*}.1"     # the `kubernetes` Service
API_PORT="${PGFLEET_API_PORT:-6443}"
ETCD_PORT="${PGFLEET_ETCD_PORT:-12379}"
CLUSTER_DOMAIN=cluster.local
DNS_HEALTH_PORT=18080
DNS_READY_PORT=18181
CNI_BIN=/usr/lib/cni

# Start order; `down` goes the other way.
COMPONENTS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns netpol)

say() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "$*"; exit 1; }
kubectl() { "$KUBE_BIN/pgfleet-kube" kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
# ctr repeats containerd's cgroup v1 deprecation warning on every call: that line is dropped.
ctr() {
  "$CONTAINERD_BIN/ctr" --address "$RUN/containerd.sock" --namespace k8s.io "$@" \
    2> >(grep -v 'support for cgroup v1 is deprecated' >&2)
}

# wait_for SECONDS WHAT COMMAND...: poll COMMAND until it succeeds
wait_for() {
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "$what: not ready after ${deadline}s (logs in $LOGS)"
    sleep 0.5
  done
}

# ------------------------------------------------------------------------------------------
# Certificates (EC P-256, ten years) from the cluster's own CA; made once, kept with the state.
cert() { # cert NAME CN [O] [SANS] : a client cert, or a server cert when SANS is given
  local name="$1" cn="$2" org="${3:-}" sans="${4:-}"
  [ -s "$PKI/$name.crt" ] && return 0
  local subj="/CN=$cn" ext="$PKI/$name.ext"
  [ -n "$org" ] && subj="/O=$org$subj"
  if [ -n "$sans" ]; then
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\n' "$sans" >"$ext"
  else
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >"$ext"
  fi
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subj" \
    -keyout "$PKI/$name.key" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
  chmod 600 "$PKI/$name.key"
}

kubeconfig() { # kubeconfig FILE CERT : a kubeconfig for the cert's identity
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pgfleet
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: pgfleet
  context: {cluster: pgfleet, user: $2}
current-context: pgfleet
EOF
  chmod 600 "$1"
}

make_pki() {
  mkdir -p "$PKI"; chmod 700 "$PKI"
  if [ ! -s "$PKI/ca.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=pgfleet-cluster-ca" -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
    chmod 600 "$PKI/ca.key"
  fi
  [ -s "$PKI/sa.key" ] || { openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key"; chmod 600 "$PKI/sa.key"; }
  [ -s "$PKI/sa.pub" ] || openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  cert apiserver kube-apiserver "" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP,IP:$API_SERVICE_IP"
  cert kubelet "system:node:$NODE_NAME" system:nodes "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"
  cert admin pgfleet-admin system:masters
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert controller-manager system:kube-controller-manager
  cert scheduler system:kube-scheduler
  cert kube-proxy system:kube-proxy
  cert coredns pgfleet:coredns
  cert netpol pgfleet:netpol
  kubeconfig "$KUBECONFIG_ADMIN" admin
  local who
  for who in controller-manager scheduler kubelet kube-proxy coredns netpol; do
    kubeconfig "$STATE/$who.kubeconfig" "$who"
  done
}

render() { # render TEMPLATE OUT : setup/cluster/TEMPLATE with @NAME@ filled in
  sed -e "s#@STATE@#$STATE#g; s#@RUN@#$RUN#g; s#@PKI@#$PKI#g; s#@NODE_IP@#$NODE_IP#g" \
      -e "s#@NODE_NAME@#$NODE_NAME#g; s#@POD_CIDR@#$POD_CIDR#g; s#@BRIDGE@#$BRIDGE#g; s#@CNI_BIN@#$CNI_BIN#g" \
      -e "s#@CLUSTER_DOMAIN@#$CLUSTER_DOMAIN#g; s#@PAUSE_IMAGE@#$PGFLEET_PAUSE_IMAGE#g" \
      -e "s#@DNS_HEALTH_PORT@#$DNS_HEALTH_PORT#g; s#@DNS_READY_PORT@#$DNS_READY_PORT#g" \
      -e "s#@UPSTREAM_DNS@#$(awk '/^nameserver/{printf "%s ", $2}' /etc/resolv.conf)#g" \
      "$SETUP_DIR/cluster/$1" >"$2.new"
  # rewritten only when it changes: kube-proxy exits when its file is written to
  if cmp -s "$2.new" "$2"; then rm -f "$2.new"; else mv "$2.new" "$2"; fi
}

# ------------------------------------------------------------------------------------------
# The host side of pod networking.
host_network() {
  sysctl -qw net.ipv4.ip_forward=1
  # Bridged pod-to-pod traffic must reach the forward hook: NetworkPolicies are enforced there.
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  # The bridge exists before the first pod, so the node has its address for the kubelet and DNS.
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr show dev "$BRIDGE" | grep -q " $NODE_IP/" || ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # dockerd sets the FORWARD policy to DROP; pod-to-pod traffic on the bridge is ours to judge.
  if iptables -L DOCKER-USER -n >/dev/null 2>&1 \
     && ! iptables -C DOCKER-USER -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; then
    iptables -I DOCKER-USER -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  fi
  # The host-path provisioner creates volumes under /tmp/hostpath_pv: keep them with the state.
  mkdir -p "$STATE/volumes"
  if [ "$(readlink /tmp/hostpath_pv 2>/dev/null)" != "$STATE/volumes" ]; then
    rm -rf /tmp/hostpath_pv 2>/dev/null || die "/tmp/hostpath_pv is in the way"
    ln -s "$STATE/volumes" /tmp/hostpath_pv
  fi
}

# ------------------------------------------------------------------------------------------
pid_of() { # the pid of a running component (a pid file of a killed run may name someone else)
  local f="$RUN/$1.pid" pid
  [ -s "$f" ] && pid="$(cat "$f")" && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$1" && echo "$pid"
}

start() { # start NAME COMMAND... : run COMMAND in the background unless NAME already runs
  local name="$1"; shift
  if pid_of "$name" >/dev/null; then return 0; fi
  say "starting $name (log $LOGS/$name.log)"
  setsid env PATH="$CONTAINERD_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "$@" </dev/null >>"$LOGS/$name.log" 2>&1 3>&- &
  echo $! >"$RUN/$name.pid"
}

stop() { # stop NAME : SIGTERM, then SIGKILL after 15 s
  local name="$1" pid
  pid="$(pid_of "$name")" || { rm -f "$RUN/$name.pid"; return 0; }
  say "stopping $name"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$RUN/$name.pid"
}

# Containers of a cluster that was killed rather than stopped (their shims gone with it) keep
# running, unknown to a new containerd: whatever is still in the pods' cgroups is stopped.
reap_orphans() {
  local pids
  pids="$(find /sys/fs/cgroup/pids/kubepods /sys/fs/cgroup/kubepods -name cgroup.procs 2>/dev/null \
    | xargs -r cat 2>/dev/null | sort -u | tr '\n' ' ' || true)"
  [ -n "${pids// /}" ] || return 0
  say "stopping processes left by the pods of a cluster that did not stop cleanly: $pids"
  # shellcheck disable=SC2086
  kill -9 $pids 2>/dev/null || true
}

api_ready() {
  curl -fsS --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$API_PORT/readyz"
}
node_ready() { # Ready, as reported by the kubelet running now (a Node keeps its last status)
  local ready since
  ready="$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}')" || return 1
  since="$(stat -c %Y "$RUN/kubelet.pid" 2>/dev/null || echo 0)"
  [ "${ready%% *}" = True ] && [ "$(date -d "${ready#* }" +%s)" -ge "$since" ] \
    && curl -fsS --max-time 2 http://127.0.0.1:10248/healthz >/dev/null
}

reference() { # reference IMAGE : the fully qualified name containerd keeps it under
  local first="${1%%/*}"
  case "$1" in
    */*) case "$first" in *.*|*:*|localhost) echo "$1" ;; *) echo "docker.io/$1" ;; esac ;;
    *) echo "docker.io/library/$1" ;;
  esac
}

# The local images, into containerd's k8s.io namespace: those whose Docker image id changed.
load_images() {
  local images=("$PGFLEET_POSTGRES_IMAGE" "$PGFLEET_POSTGRES17_IMAGE" "$PGFLEET_PGBOUNCER_IMAGE" "$PGFLEET_EXPORTER_IMAGE" "$PGFLEET_REDIS_IMAGE"
                "$PGFLEET_OPENBAO_IMAGE" "$PGFLEET_VERSITYGW_IMAGE" "$PGFLEET_PAUSE_IMAGE")
  local changed=() image id mark have
  have="$(ctr images ls -q)"
  mkdir -p "$STATE/images"
  for image in "${images[@]}"; do
    id="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null)" || { say "image $image is not built: skipped"; continue; }
    mark="$STATE/images/$(echo "$image" | tr '/:' '__').id"
    if [ "$(cat "$mark" 2>/dev/null)" != "$id" ] || ! grep -qxF "$(reference "$image")" <<<"$have"; then
      changed+=("$image")
    fi
  done
  [ "${#changed[@]}" = 0 ] && return 0
  say "loading ${changed[*]}"
  docker save "${changed[@]}" | ctr images import --platform linux/amd64 - >/dev/null
  for image in "${changed[@]}"; do
    docker image inspect -f '{{.Id}}' "$image" >"$STATE/images/$(echo "$image" | tr '/:' '__').id"
  done
}

up() {
  [ "$(id -u)" = 0 ] || die "run as root (it starts a kubelet and containerd)"
  [ -x "$KUBE_BIN/pgfleet-kube" ] && [ -x "$CONTAINERD_BIN/containerd" ] \
    || die "the cluster's binaries are not built: run setup/toolchain.sh --cluster"
  local t0=$SECONDS
  mkdir -p "$STATE" "$RUN" "$LOGS" "$STATE/cni/net.d" "$STATE/bin"
  ln -sfn "$KUBE_BIN/pgfleet-kube" "$STATE/bin/kubectl"
  make_pki
  render containerd.toml "$STATE/containerd.toml"
  render 10-pgfleet.conflist "$STATE/cni/net.d/10-pgfleet.conflist"
  render kubelet.yaml "$STATE/kubelet.yaml"
  render kube-proxy.yaml "$STATE/kube-proxy.yaml"
  render Corefile "$STATE/Corefile"
  host_network

  if ! pid_of containerd >/dev/null; then reap_orphans; fi
  start containerd "$CONTAINERD_BIN/containerd" --config "$STATE/containerd.toml"
  start etcd "$KUBE_BIN/pgfleet-kube" etcd --name "$NODE_NAME" --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "$NODE_NAME=http://127.0.0.1:$((ETCD_PORT + 1))" \
    --quota-backend-bytes 2147483648 --log-level warn
  wait_for 30 containerd ctr version
  load_images
  wait_for 30 etcd curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"
  start kube-apiserver "$KUBE_BIN/pgfleet-kube" kube-apiserver \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" --secure-port "$API_PORT" --advertise-address "$NODE_IP" \
    --service-cluster-ip-range "$SERVICE_CIDR" --anonymous-auth=false --profiling=false \
    --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --allow-privileged=true
  wait_for 90 kube-apiserver api_ready
  kubectl apply -f "$SETUP_DIR/cluster/bootstrap.yaml" >/dev/null
  start kube-controller-manager "$KUBE_BIN/pgfleet-kube" kube-controller-manager \
    --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --enable-hostpath-provisioner
  start kube-scheduler "$KUBE_BIN/pgfleet-kube" kube-scheduler \
    --kubeconfig "$STATE/scheduler.kubeconfig" --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/scheduler.kubeconfig" --bind-address 127.0.0.1 --leader-elect=false
  start kubelet "$KUBE_BIN/pgfleet-kube" kubelet --config "$STATE/kubelet.yaml" \
    --kubeconfig "$STATE/kubelet.kubeconfig" --root-dir "$STATE/kubelet" \
    --node-ip "$NODE_IP" --hostname-override "$NODE_NAME"
  start kube-proxy "$KUBE_BIN/pgfleet-kube" kube-proxy --config "$STATE/kube-proxy.yaml"
  start coredns "$KUBE_BIN/pgfleet-coredns" -conf "$STATE/Corefile"
  start netpol "$KUBE_BIN/pgfleet-netpol" -kubeconfig "$STATE/netpol.kubeconfig"
  wait_for 120 "node $NODE_NAME" node_ready
  wait_for 60 "cluster DNS" curl -fsS --max-time 2 "http://127.0.0.1:$DNS_READY_PORT/ready"
  say "up in $((SECONDS - t0))s: node $NODE_NAME Ready ($("$KUBE_BIN/pgfleet-kube" version)); export KUBECONFIG=$KUBECONFIG_ADMIN"
}

down() {
  [ "$(id -u)" = 0 ] || die "run as root"
  stop kubelet
  # Pods: their containers outlive the kubelet and containerd (each has a shim), so they go first.
  if pid_of containerd >/dev/null; then
    local task
    for task in $(ctr tasks ls -q 2>/dev/null); do ctr tasks kill -s SIGKILL "$task" 2>/dev/null || true; done
    sleep 1
    for task in $(ctr tasks ls -q 2>/dev/null); do ctr tasks delete -f "$task" >/dev/null 2>&1 || true; done
  fi
  local i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    [ "${COMPONENTS[i]}" = kubelet ] || stop "${COMPONENTS[i]}"
  done
  pkill -f "containerd-shim-runc-v2 .*-address $RUN/containerd.sock" 2>/dev/null || true
  reap_orphans
  # What the pods left on the host: volume mounts, network namespaces, the rule tables.
  findmnt -rn -o TARGET | grep -E "^($STATE/kubelet|$RUN)(/|\$)" | sort -r | xargs -r umount -l 2>/dev/null || true
  ip netns list 2>/dev/null | awk '/^cni-/{print $1}' | xargs -r -n1 ip netns delete 2>/dev/null || true
  nft delete table inet pgfleet-netpol 2>/dev/null || true
  nft delete table ip kube-proxy 2>/dev/null || true
  nft delete table ip6 kube-proxy 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
  say "down (state kept in $STATE)"
}

status() {
  local name pid ok=0
  for name in "${COMPONENTS[@]}"; do
    if pid="$(pid_of "$name")"; then
      printf '  %-24s running (pid %s)\n' "$name" "$pid"
    else
      printf '  %-24s stopped\n' "$name"; ok=3
    fi
  done
  if [ -s "$PKI/admin.crt" ] && api_ready >/dev/null 2>&1; then
    printf '  %-24s ready (https://127.0.0.1:%s)\n' api "$API_PORT"
    if node_ready 2>/dev/null; then printf '  %-24s Ready\n' "node $NODE_NAME"; else printf '  %-24s not Ready\n' "node $NODE_NAME"; ok=3; fi
  else
    printf '  %-24s not answering\n' api; ok=3
  fi
  return "$ok"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) printf 'export KUBECONFIG=%s\nexport PATH=%s/bin:$PATH\n' "$KUBECONFIG_ADMIN" "$STATE" ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
