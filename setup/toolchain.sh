#!/usr/bin/env bash
# pgfleet offline toolchain: Pulumi CLI + Python language host, provider plugins, a Vault-API
# server, a Docker engine and the local container images. Idempotent; everything built is
# cached by version under $PGFLEET_CACHE (default /var/cache/pgfleet) and linked into
# $PGFLEET_BIN_DIR (default /usr/local/bin). See setup/README.md.
#
# Usage: setup/toolchain.sh            (everything)
#        PGFLEET_ONLY=pulumi,providers setup/toolchain.sh
#        PGFLEET_SKIP=images setup/toolchain.sh
# Steps: pulumi langhost providers vaultserver versitygw docker images
# Exit status: 0 when every step is ok/cached or UNAVAILABLE (the module proxy refuses a module
# version: reported, not fatal); 1 when a step failed for another reason.
set -euo pipefail

SETUP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$SETUP_DIR/versions.env"

CACHE="${PGFLEET_CACHE:-/var/cache/pgfleet}"
BIN_DIR="${PGFLEET_BIN_DIR:-/usr/local/bin}"
LOGS="$CACHE/logs"
ONLY="${PGFLEET_ONLY:-}"
SKIP="${PGFLEET_SKIP:-}"
mkdir -p "$CACHE/bin" "$CACHE/build" "$LOGS" "$BIN_DIR"

export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
export DEBIAN_FRONTEND=noninteractive
NICE="nice -n 10"

declare -a SUMMARY=()
declare -a IMAGE_BUILD_ARGS=()
FAILED=0

# fd 3 = the terminal/CI log of the top-level run; step output goes to per-step logs.
if [ "${1:-}" != __step ]; then exec 3>&2; fi
log() { printf '[toolchain %s] %s\n' "$(date +%H:%M:%S)" "$*" >&3; }

want() { # want STEP: is this step selected?
  local s="$1"
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$s,"* ]]; then return 1; fi
  if [[ ",$SKIP," == *",$s,"* ]]; then return 1; fi
  return 0
}

hash_of() { # hash_of FILE|DIR... : short content hash (names + contents)
  local p
  for p in "$@"; do
    if [ -d "$p" ]; then
      (cd "$p" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    elif [ -e "$p" ]; then
      sha256sum "$p"
    else
      echo "$p"
    fi
  done | sha256sum | cut -c1-12
}

# record NAME STATUS SECONDS DETAIL
record() { SUMMARY+=("$(printf '%-34s %-12s %6ss  %s' "$1" "$2" "$3" "$4")"); }

# run_step NAME LOGFILE FUNC ARGS... : time FUNC, classify its result
run_step() {
  local name="$1" logf="$2"; shift 2
  local t0=$SECONDS rc=0 out
  : >"$logf"   # a fresh log per run, so the 403 check below only sees this run
  # each step runs in a child process so that `set -e` applies inside it
  out="$(bash "$SETUP_DIR/toolchain.sh" __step "$@" 2>>"$logf")" || rc=$?
  local dt=$((SECONDS - t0))
  if [ "$rc" = 0 ]; then
    record "$name" "${out%%|*}" "$dt" "${out#*|}"
  elif grep -qE '403 Forbidden|This module version is not available' "$logf" 2>/dev/null; then
    record "$name" UNAVAILABLE "$dt" "module proxy refuses a required module version (see $logf)"
    log "$name: UNAVAILABLE from the module proxy (log: $logf)"
  else
    record "$name" FAILED "$dt" "exit $rc (see $logf)"
    log "$name: FAILED (log: $logf)"
    FAILED=1
  fi
}

link() { # link TARGET NAME : symlink into BIN_DIR
  ln -sfn "$1" "$BIN_DIR/$2"
}

prune_siblings() { # prune_siblings KEEP GLOB: drop superseded builds (older content hashes)
  local keep="$1" d
  for d in $2; do
    if [ -e "$d" ] && [ "$d" != "$keep" ]; then rm -rf "$d"; fi
  done
}

moddir() { # moddir MOD@VER : download a module through the proxy, print its directory
  local d
  d="$(cd "$CACHE/build" && go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [ -n "$d" ] && [ -d "$d" ] || { echo "cannot download $1" >&2; return 1; }
  echo "$d"
}

# ---------------------------------------------------------------------------------------------
# 1. Pulumi CLI (module github.com/pulumi/pulumi/pkg/v3, built by a wrapper module)
step_pulumi() {
  local v="$PULUMI_CLI_VERSION" out="$CACHE/bin/pulumi/$PULUMI_CLI_VERSION"
  if [ ! -x "$out/pulumi" ]; then
    local b="$CACHE/build/pulumi-cli-$v"
    mkdir -p "$b" "$out"
    # pkg/v3's own replaces (sdk/v3 => ../sdk, and the clipboard fork) are restated here.
    cat >"$b/go.mod" <<EOF
module pgfleet.local/build/pulumicli

go 1.26

require (
	github.com/pulumi/pulumi/pkg/v3 $v
	github.com/pulumi/pulumi/sdk/v3 $v
)

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
EOF
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' >"$b/tools.go"
    log "building pulumi CLI $v (several minutes on 2 cores; log $LOGS/pulumi-cli.log)"
    (cd "$b" && go mod tidy && $NICE go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$v" \
      -o "$out/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) >&2
    mv "$out/pulumi.tmp" "$out/pulumi"
    echo "built|$out/pulumi"
  else
    echo "cached|$out/pulumi"
  fi
  link "$out/pulumi" pulumi
}

# ---------------------------------------------------------------------------------------------
# 2. Python language host (setup/go/langhost, own code) + exec scripts from sdk/v3
step_langhost() {
  local h out
  h="$(hash_of "$SETUP_DIR/go/langhost")"
  h="$(printf '%s %s %s' "$h" "$LANGHOST_SDK_VERSION" "$PULUMI_PY_EXEC_VERSION" | sha256sum | cut -c1-12)"
  out="$CACHE/bin/langhost/${LANGHOST_SDK_VERSION}-$h"
  local status=cached
  if [ ! -x "$out/pulumi-language-python" ] || [ ! -x "$out/pulumi-language-python-exec" ]; then
    status=built
    local b="$CACHE/build/langhost-${LANGHOST_SDK_VERSION}-$h"
    mkdir -p "$b" "$out"
    cp "$SETUP_DIR/go/langhost/main.go" "$b/main.go"
    cat >"$b/go.mod" <<EOF
module pgfleet.local/build/langhost

go 1.26

require github.com/pulumi/pulumi/sdk/v3 $LANGHOST_SDK_VERSION
EOF
    log "building python language host against sdk/v3 $LANGHOST_SDK_VERSION"
    (cd "$b" && go mod tidy && $NICE go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X main.version=${LANGHOST_SDK_VERSION#v}" -o "$out/pulumi-language-python.tmp" .) >&2
    mv "$out/pulumi-language-python.tmp" "$out/pulumi-language-python"
    local sdk
    sdk="$(moddir "github.com/pulumi/pulumi/sdk/v3@$PULUMI_PY_EXEC_VERSION")"
    install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$out/pulumi-language-python-exec"
    install -m 0755 "$sdk/python/dist/pulumi-resource-pulumi-python" "$out/pulumi-resource-pulumi-python"
  fi
  prune_siblings "$out" "$CACHE/bin/langhost/${LANGHOST_SDK_VERSION}-*"
  prune_siblings "$CACHE/build/langhost-${LANGHOST_SDK_VERSION}-$h" "$CACHE/build/langhost-${LANGHOST_SDK_VERSION}-*"
  # Installed beside the pulumi binary (where the engine looks first), not on PATH: a second
  # copy on PATH makes the engine warn "using pulumi-language-python from $PATH".
  local f
  for f in pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python; do
    rm -f "$BIN_DIR/$f"
    if [ -d "$CACHE/bin/pulumi/$PULUMI_CLI_VERSION" ]; then
      ln -sfn "$out/$f" "$CACHE/bin/pulumi/$PULUMI_CLI_VERSION/$f"
    fi
  done
  echo "$status|$out"
}

# ---------------------------------------------------------------------------------------------
# 3. Terraform-bridged providers: setup/go/bridged (common.go + info_<name>.go) + setup/shims/<name>
# build_bridged NAME VERSION FETCH_SPEC DECLARED_MODULE_PATH [BUILD_TAGS]
build_bridged() {
  local name="$1" ver="$2" spec="$3" declared="$4" tags="${5:-}"
  local fetchpath="${spec%@*}" upver="${spec#*@}"
  local h
  h="$(hash_of "$SETUP_DIR/go/bridged/common.go" "$SETUP_DIR/go/bridged/info_$name.go" \
    "$SETUP_DIR/shims/$name" "$SETUP_DIR/providers/$name.tokens.json")"
  h="$(printf '%s %s %s %s %s' "$h" "$spec" "$TF_BRIDGE_VERSION" "$TF_PLUGIN_SDK_FORK" "$tags" | sha256sum | cut -c1-12)"
  local out="$CACHE/bin/providers/$name/$ver-$h" bin="pulumi-resource-$name"
  local status=cached
  # leftovers of builds that failed before producing anything
  [ -d "$CACHE/bin/providers/$name" ] && find "$CACHE/bin/providers/$name" -mindepth 1 -maxdepth 1 -type d -empty -delete
  if [ ! -x "$out/$bin" ] || [ ! -s "$out/schema.json" ]; then
    status=built
    local b="$CACHE/build/provider-$name-$ver-$h"
    rm -rf "$b"
    mkdir -p "$b/shim"
    cp "$SETUP_DIR/go/bridged/common.go" "$SETUP_DIR/go/bridged/info_$name.go" "$b/"
    cp "$SETUP_DIR/providers/$name.tokens.json" "$b/sdk-tokens.json"
    cp "$SETUP_DIR/shims/$name/"*.go "$b/shim/"
    local req_up="$upver" rep_up=""
    if [ "$fetchpath" != "$declared" ]; then
      req_up="v0.0.0"
      rep_up="replace $declared => $fetchpath $upver"
    fi
    cat >"$b/shim/go.mod" <<EOF
module $declared/pgfleetshim

go 1.26

require $declared $req_up
EOF
    cat >"$b/go.mod" <<EOF
module pgfleet.local/build/provider-$name

go 1.26

require (
	github.com/pulumi/pulumi-terraform-bridge/v3 $TF_BRIDGE_VERSION
	$declared $req_up
	$declared/pgfleetshim v0.0.0
)

replace github.com/hashicorp/terraform-plugin-sdk/v2 => github.com/pulumi/terraform-plugin-sdk/v2 $TF_PLUGIN_SDK_FORK

replace $declared/pgfleetshim => ./shim

$rep_up
EOF
    log "building provider $name $ver (upstream $spec; log $LOGS/provider-$name.log)"
    (cd "$b" && go mod tidy) >&2
    mkdir -p "$out"
    (cd "$b" && $NICE go build -trimpath ${tags:+-tags "$tags"} \
      -ldflags "-s -w -X main.version=$ver" -o "$out/$bin.tmp" .) >&2
    mv "$out/$bin.tmp" "$out/$bin"
    # schema.json + bridge-metadata.json beside the binary (read at start-up)
    local gen="$b/gen"
    rm -rf "$gen"; mkdir -p "$gen"
    (cd "$b" && "$out/$bin" pgfleet-tfgen schema --out "$gen" --skip-docs) >&2
    jq --arg v "$ver" '.version = $v' "$gen/schema.json" >"$out/schema.json"
    cp "$gen/bridge-metadata.json" "$out/bridge-metadata.json" 2>/dev/null || echo '{}' >"$out/bridge-metadata.json"
    "$out/$bin" pgfleet-mapping >"$out/mapping.json"
  fi
  prune_siblings "$out" "$CACHE/bin/providers/$name/$ver-*"
  prune_siblings "$CACHE/build/provider-$name-$ver-$h" "$CACHE/build/provider-$name-$ver-*"
  link "$out/$bin" "$bin"
  install_plugin "$name" "$ver" "$out"
  local served unmapped
  served="$(jq '(.resources|length) + (.dataSources|length)' "$out/mapping.json")"
  unmapped="$(jq -r '.unservedSdkTokens | length' "$out/mapping.json")"
  echo "$status|$out/$bin ($served tokens mapped, $unmapped SDK tokens not served)"
}

# install_plugin NAME VERSION DIR: put DIR (binary + schema.json + bridge-metadata.json) into the
# engine's plugin cache as resource-NAME-vVERSION, so it is found without the $PATH lookup
# (which prints "using pulumi-resource-NAME from $PATH" warnings).
install_plugin() {
  local name="$1" ver="$2" dir="$3"
  local home="${PULUMI_HOME:-$HOME/.pulumi}"
  local dest="$home/plugins/resource-$name-v$ver"
  if cmp -s "$dir/pulumi-resource-$name" "$dest/pulumi-resource-$name" \
     && cmp -s "$dir/bridge-metadata.json" "$dest/bridge-metadata.json"; then
    return 0
  fi
  local pulumi_bin="$CACHE/bin/pulumi/$PULUMI_CLI_VERSION/pulumi"
  [ -x "$pulumi_bin" ] || { echo "pulumi CLI not built: plugin $name not installed in $home" >&2; return 0; }
  local tgz="$CACHE/build/plugin-$name-$ver.tar.gz"
  tar -C "$dir" -czf "$tgz" "pulumi-resource-$name" schema.json bridge-metadata.json
  PULUMI_SKIP_UPDATE_CHECK=true "$pulumi_bin" plugin install resource "$name" "$ver" --file "$tgz" --reinstall >&2
  rm -f "$tgz"
}

# Stand-in pulumi-resource-postgresql (setup/go/pgsubset, own code) for when the bridged
# provider cannot be built: serves the SDK's Role/Database/Schema/Grant/GrantRole/
# DefaultPrivileges/Extension with plain SQL. Skipped as soon as the real one exists.
step_pgsubset() {
  local ver="$PROVIDER_POSTGRESQL_VERSION" real
  real="$(ls "$CACHE"/bin/providers/postgresql/"$ver"-*/pulumi-resource-postgresql 2>/dev/null | head -1 || true)"
  if [ -n "$real" ]; then echo "skipped|the bridged provider is built ($real)"; return 0; fi
  local h
  h="$(hash_of "$SETUP_DIR/go/pgsubset")"
  h="$(printf '%s %s %s' "$h" "$LANGHOST_SDK_VERSION" "$PGX_VERSION" | sha256sum | cut -c1-12)"
  local out="$CACHE/bin/providers/postgresql-standin/$ver-$h" bin=pulumi-resource-postgresql
  local status=cached
  if [ ! -x "$out/$bin" ]; then
    status=built
    local b="$CACHE/build/pgsubset-$ver-$h"
    rm -rf "$b"; mkdir -p "$b"
    cp "$SETUP_DIR/go/pgsubset/"*.go "$b/"
    printf 'module pgfleet.local/build/pgsubset\n\ngo 1.26\n\nrequire (\n\tgithub.com/pulumi/pulumi/sdk/v3 %s\n\tgithub.com/jackc/pgx/v5 %s\n)\n' \
      "$LANGHOST_SDK_VERSION" "$PGX_VERSION" >"$b/go.mod"
    log "building the postgresql stand-in provider (log $LOGS/provider-postgresql-standin.log)"
    (cd "$b" && go mod tidy) >&2
    mkdir -p "$out"
    (cd "$b" && $NICE go build -trimpath -ldflags "-s -w -X main.version=$ver" -o "$out/$bin.tmp" .) >&2
    mv "$out/$bin.tmp" "$out/$bin"
    printf '{"name":"postgresql","version":"%s"}\n' "$ver" >"$out/schema.json"
    echo '{}' >"$out/bridge-metadata.json"
    prune_siblings "$out" "$CACHE/bin/providers/postgresql-standin/$ver-*"
    prune_siblings "$b" "$CACHE/build/pgsubset-$ver-*"
  fi
  link "$out/$bin" "$bin"
  install_plugin postgresql "$ver" "$out"
  echo "$status|$out/$bin (STAND-IN subset: Role Database Schema Grant GrantRole DefaultPrivileges Extension)"
}

step_provider_kubernetes() {
  # pulumi-kubernetes is a native provider: it can only be built from its own module
  # (wrapper module + schema-embed.json + terraform-mapping-embed.json per TOOLCHAIN.md).
  local out="$CACHE/bin/providers/kubernetes/$PROVIDER_KUBERNETES_VERSION"
  if [ -x "$out/pulumi-resource-kubernetes" ]; then
    link "$out/pulumi-resource-kubernetes" pulumi-resource-kubernetes
    echo "cached|$out/pulumi-resource-kubernetes"
    return 0
  fi
  # Probe the module proxy: without a listable/served version there is nothing to build.
  (cd "$CACHE/build" && go list -m -versions "$KUBERNETES_PROVIDER_MODULE") >&2
  echo "kubernetes provider module listing succeeded: add a build recipe" >&2
  return 1
}

# ---------------------------------------------------------------------------------------------
# 4. Vault-API server: OpenBao `bao` if the proxy serves it, else HashiCorp Vault `vault`.
step_vaultserver() {
  local out="$CACHE/bin/openbao/$OPENBAO_VERSION"
  if [ -x "$out/bao" ]; then link "$out/bao" bao; echo "cached|$out/bao"; return 0; fi
  if (cd "$CACHE/build" && go mod download "github.com/openbao/openbao@$OPENBAO_VERSION") \
    >"$LOGS/openbao-probe.log" 2>&1; then
    local b="$CACHE/build/openbao-$OPENBAO_VERSION"
    mkdir -p "$b" "$out"
    cat >"$b/go.mod" <<EOF
module pgfleet.local/build/openbao

go 1.26

require github.com/openbao/openbao $OPENBAO_VERSION

replace (
	github.com/openbao/openbao/api/v2 => github.com/openbao/openbao/api/v2 $OPENBAO_SDK_VERSION
	github.com/openbao/openbao/sdk/v2 => github.com/openbao/openbao/sdk/v2 $OPENBAO_SDK_VERSION
)
EOF
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/openbao/openbao"\n' >"$b/tools.go"
    (cd "$b" && go mod tidy && $NICE go build -trimpath -o "$out/bao.tmp" github.com/openbao/openbao) >&2
    mv "$out/bao.tmp" "$out/bao"
    link "$out/bao" bao
    echo "built|$out/bao"
    return 0
  fi
  echo "openbao $OPENBAO_VERSION not downloadable (see $LOGS/openbao-probe.log); falling back to hashicorp/vault $VAULT_SERVER_VERSION" >&2
  local vout="$CACHE/bin/vault/$VAULT_SERVER_VERSION"
  local status=cached
  if [ ! -x "$vout/vault" ]; then
    status=built
    local vb="$CACHE/build/vault-$VAULT_SERVER_VERSION"
    mkdir -p "$vb" "$vout"
    # vault's go.mod replaces api/sdk with ./api ./sdk: use the published nested modules instead.
    local api sdk
    api="$(curl -fsS "https://proxy.golang.org/github.com/hashicorp/vault/@v/$VAULT_SERVER_VERSION.mod" \
      | sed -n 's#^\tgithub.com/hashicorp/vault/api \(v[^ ]*\).*#\1#p' | head -1)"
    sdk="$VAULT_SERVER_SDK_VERSION"
    cat >"$vb/go.mod" <<EOF
module pgfleet.local/build/vault

go 1.26

require github.com/hashicorp/vault $VAULT_SERVER_VERSION

replace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3

replace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1
EOF
    [ -n "$api" ] && printf '\nrequire github.com/hashicorp/vault/api %s\n' "$api" >>"$vb/go.mod"
    [ -n "$sdk" ] && printf '\nrequire github.com/hashicorp/vault/sdk %s\n' "$sdk" >>"$vb/go.mod"
    # Patch: vault's tagged tree builds against its in-tree ./sdk, which was never published as
    # such: the sdk its go.mod names (v0.21.0) lacks two later changes that v1.21.4's code uses
    # (keysutil.LockManager.RestorePolicy returning (string, error), and
    # framework.Backend.ActivationFunc taking no third string argument), while newer published
    # sdks add SystemView.GetConsumptionBillingManager, which v1.21.4 does not implement.
    # So: a copy of sdk $sdk, with helper/keysutil/{lock_manager,policy}.go taken from sdk
    # $VAULT_SERVER_SDK_KEYSUTIL_VERSION and the ActivationFunc field type changed.
    if [ -n "$sdk" ]; then
      local sdkdir kdir
      sdkdir="$(moddir "github.com/hashicorp/vault/sdk@$sdk")"
      kdir="$(moddir "github.com/hashicorp/vault/sdk@$VAULT_SERVER_SDK_KEYSUTIL_VERSION")"
      rm -rf "$vb/sdk"; cp -r "$sdkdir" "$vb/sdk"; chmod -R u+w "$vb/sdk"
      cp "$kdir/helper/keysutil/lock_manager.go" "$kdir/helper/keysutil/policy.go" "$vb/sdk/helper/keysutil/"
      sed -i 's/^\(\tActivationFunc func(context.Context, \*logical.Request\), string) error$/\1) error/' \
        "$vb/sdk/framework/backend.go"
      grep -q 'ActivationFunc func(context.Context, \*logical.Request) error' "$vb/sdk/framework/backend.go" \
        || { echo "sdk patch did not apply" >&2; return 1; }
      printf '\nreplace github.com/hashicorp/vault/sdk => ./sdk\n' >>"$vb/go.mod"
    fi
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/hashicorp/vault"\n' >"$vb/tools.go"
    log "building hashicorp vault $VAULT_SERVER_VERSION (long; log $LOGS/vaultserver.log)"
    (cd "$vb" && go mod tidy && $NICE go build -trimpath \
      -ldflags "-s -w -X github.com/hashicorp/vault/version.Version=${VAULT_SERVER_VERSION#v}" \
      -o "$vout/vault.tmp" github.com/hashicorp/vault) >&2
    mv "$vout/vault.tmp" "$vout/vault"
  fi
  link "$vout/vault" vault
  # `bao` on PATH: wrapper mapping BAO_* env to VAULT_* around this vault (see setup/bin/bao-compat.sh)
  install -m 0755 "$SETUP_DIR/bin/bao-compat.sh" "$vout/bao"
  link "$vout/bao" bao
  echo "$status|$vout/vault + bao wrapper (fallback: openbao $OPENBAO_VERSION not served by the proxy)"
}


# ---------------------------------------------------------------------------------------------
# 4b. S3-compatible object store: versitygw (posix backend), for pgBackRest S3 repositories.
# Not linked into BIN_DIR: it runs inside pgfleet/versitygw (step_versitygw_image).
step_versitygw() {
  local v="$VERSITYGW_VERSION" out="$CACHE/bin/versitygw/$VERSITYGW_VERSION"
  if [ -x "$out/versitygw" ]; then echo "cached|$out/versitygw"; return 0; fi
  local b="$CACHE/build/versitygw-$v"
  mkdir -p "$b" "$out"
  cat >"$b/go.mod" <<EOF
module pgfleet.local/build/versitygw

go 1.26

require github.com/versity/versitygw $v
EOF
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/versity/versitygw/cmd/versitygw"\n' >"$b/tools.go"
  log "building versitygw $v (log $LOGS/versitygw.log)"
  (cd "$b" && go mod tidy && $NICE go build -trimpath \
    -ldflags "-s -w -X main.Version=$v -X main.Build=pgfleet" \
    -o "$out/versitygw.tmp" github.com/versity/versitygw/cmd/versitygw) >&2
  mv "$out/versitygw.tmp" "$out/versitygw"
  echo "built|$out/versitygw"
}

# ---------------------------------------------------------------------------------------------
# 5. Docker engine
step_docker() {
  local status=running
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io"
    apt-get update -qq >&2
    apt-get install -y -qq docker.io >&2
    status=installed
  fi
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log /var/log/dockerd.log)"
    nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null 3>&- &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { echo "dockerd did not answer in 60 s" >&2; return 1; }
    [ "$status" = running ] && status=started
  fi
  echo "$status|$(docker version -f '{{.Server.Version}}' 2>/dev/null)"
}

# ---------------------------------------------------------------------------------------------
# 6. Images: debootstrap base + Dockerfiles in setup/images/, rebuilt only when inputs change
image_hash() { docker image inspect -f '{{index .Config.Labels "org.pgfleet.hash"}}' "$1" 2>/dev/null || true; }

step_base_image() {
  local h
  h="$(printf 'minbase %s %s v1' "$DEBIAN_SUITE" "$DEBIAN_MIRROR" | sha256sum | cut -c1-12)"
  if [ "$(image_hash "$PGFLEET_BASE_IMAGE")" = "$h" ]; then echo "cached|$PGFLEET_BASE_IMAGE"; return 0; fi
  command -v debootstrap >/dev/null 2>&1 || apt-get install -y -qq debootstrap >&2
  local tarball="$CACHE/rootfs/$DEBIAN_SUITE-minbase-$h.tar"
  if [ ! -s "$tarball" ]; then
    local root="$CACHE/rootfs/$DEBIAN_SUITE-minbase.tmp"
    rm -rf "$root"; mkdir -p "$root"
    log "debootstrap $DEBIAN_SUITE (minbase)"
    debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" >&2
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  docker import \
    --change "LABEL org.pgfleet.hash=$h" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    "$tarball" "$PGFLEET_BASE_IMAGE" >&2
  echo "built|$PGFLEET_BASE_IMAGE"
}

# build_image DIR TAG [EXTRA_FILE...]: extra files are copied into the build context
build_image() {
  local name="$1" dir="$SETUP_DIR/images/$1" tag="$2"; shift 2
  local base_id h
  base_id="$(docker image inspect -f '{{.Id}}' "$PGFLEET_BASE_IMAGE")"
  h="$(printf '%s %s' "$(hash_of "$dir" "$@")" "$base_id" | sha256sum | cut -c1-12)"
  if [ "$(image_hash "$tag")" = "$h" ]; then echo "cached|$tag"; return 0; fi
  local ctx="$CACHE/build/image-$name"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp -a "$dir/." "$ctx/"
  local f
  # hard links: the build context lives on the same filesystem as the cache
  for f in "$@"; do cp -rlL "$f" "$ctx/" 2>/dev/null || cp -rL "$f" "$ctx/"; done
  log "docker build $tag"
  docker build -q --label "org.pgfleet.hash=$h" --build-arg "BASE_IMAGE=$PGFLEET_BASE_IMAGE" \
    ${IMAGE_BUILD_ARGS[@]+"${IMAGE_BUILD_ARGS[@]}"} -t "$tag" "$ctx" >&2
  rm -rf "$ctx"
  # drop the superseded (now untagged) build of this image
  docker image prune -f --filter label=org.pgfleet.hash >/dev/null 2>&1 || true
  echo "built|$tag"
}

step_openbao_image() {
  local srv="$CACHE/build/openbao-image/server"
  rm -rf "$srv"; mkdir -p "$srv"
  if [ -x "$CACHE/bin/openbao/$OPENBAO_VERSION/bao" ]; then
    ln -f "$CACHE/bin/openbao/$OPENBAO_VERSION/bao" "$srv/bao"
    IMAGE_BUILD_ARGS=(--build-arg "SERVER_KIND=openbao-$OPENBAO_VERSION")
  elif [ -x "$CACHE/bin/vault/$VAULT_SERVER_VERSION/vault" ]; then
    ln -f "$CACHE/bin/vault/$VAULT_SERVER_VERSION/vault" "$srv/vault"
    install -m 0755 "$SETUP_DIR/bin/bao-compat.sh" "$srv/bao"
    IMAGE_BUILD_ARGS=(--build-arg "SERVER_KIND=hashicorp-vault-$VAULT_SERVER_VERSION+bao-compat")
  else
    echo "no Vault-API server binary built (step vaultserver)" >&2
    return 1
  fi
  build_image openbao "$PGFLEET_OPENBAO_IMAGE" "$srv"
}

step_versitygw_image() {
  local bin="$CACHE/bin/versitygw/$VERSITYGW_VERSION/versitygw"
  [ -x "$bin" ] || { echo "no versitygw binary built (step versitygw)" >&2; return 1; }
  local srv="$CACHE/build/versitygw-image/server"
  rm -rf "$srv"; mkdir -p "$srv"
  ln -f "$bin" "$srv/versitygw"
  IMAGE_BUILD_ARGS=(--build-arg "VERSITYGW_VERSION=$VERSITYGW_VERSION")
  build_image versitygw "$PGFLEET_VERSITYGW_IMAGE" "$srv"
}

# ---------------------------------------------------------------------------------------------
if [ "${1:-}" = __step ]; then
  shift
  "$@"
  exit 0
fi

main() {
T_START=$SECONDS
if want pulumi; then run_step "pulumi CLI $PULUMI_CLI_VERSION" "$LOGS/pulumi-cli.log" step_pulumi; fi
if want langhost; then run_step "pulumi-language-python" "$LOGS/langhost.log" step_langhost; fi
if want docker; then run_step "docker engine" "$LOGS/docker.log" step_docker; fi
if want providers; then
  command -v jq >/dev/null 2>&1 || apt-get install -y -qq jq >&2
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
  run_step "provider kubernetes $PROVIDER_KUBERNETES_VERSION" "$LOGS/provider-kubernetes.log" \
    step_provider_kubernetes
fi
if want vaultserver; then run_step "vault-API server" "$LOGS/vaultserver.log" step_vaultserver; fi
if want versitygw; then run_step "versitygw $VERSITYGW_VERSION" "$LOGS/versitygw.log" step_versitygw; fi
if want images; then
  if docker info >/dev/null 2>&1; then
    run_step "image $PGFLEET_BASE_IMAGE" "$LOGS/image-base.log" step_base_image
    run_step "image $PGFLEET_POSTGRES_IMAGE" "$LOGS/image-postgres.log" build_image postgres "$PGFLEET_POSTGRES_IMAGE"
    run_step "image $PGFLEET_PGBOUNCER_IMAGE" "$LOGS/image-pgbouncer.log" build_image pgbouncer "$PGFLEET_PGBOUNCER_IMAGE"
    run_step "image $PGFLEET_EXPORTER_IMAGE" "$LOGS/image-postgres-exporter.log" build_image postgres-exporter "$PGFLEET_EXPORTER_IMAGE"
    run_step "image $PGFLEET_REDIS_IMAGE" "$LOGS/image-redis.log" build_image redis "$PGFLEET_REDIS_IMAGE"
    run_step "image $PGFLEET_OPENBAO_IMAGE" "$LOGS/image-openbao.log" step_openbao_image
    run_step "image $PGFLEET_VERSITYGW_IMAGE" "$LOGS/image-versitygw.log" step_versitygw_image
  else
    record "images" FAILED 0 "docker engine not answering"
    FAILED=1
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
