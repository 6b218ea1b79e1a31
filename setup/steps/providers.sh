# shellcheck shell=bash
# Provider plugins: the Terraform-bridged ones (random, docker, vault; postgresql when the proxy
# serves it), the PostgreSQL stand-in, and pulumi-kubernetes. A plugin already in the engine's
# plugin cache at the version the SDK asks for, installed by someone else, is used as it is.

# Terraform-bridged providers: setup/go/bridged (common.go + info_<name>.go) + setup/shims/<name>
# build_bridged NAME VERSION FETCH_SPEC DECLARED_MODULE_PATH [BUILD_TAGS]
build_bridged() {
  local name="$1" ver="$2" spec="$3" declared="$4" tags="${5:-}"
  local fetchpath="${spec%@*}" upver="${spec#*@}"
  if foreign_plugin "$name" "$ver"; then echo "found|resource-$name v$ver in the plugin cache"; return 0; fi
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
  install_plugin "$name" "$ver" "$out" schema.json bridge-metadata.json
  local served unmapped
  served="$(jq '(.resources|length) + (.dataSources|length)' "$out/mapping.json")"
  unmapped="$(jq -r '.unservedSdkTokens | length' "$out/mapping.json")"
  echo "$status|$out/$bin ($served tokens mapped, $unmapped SDK tokens not served)"
}

# Stand-in pulumi-resource-postgresql (setup/go/pgsubset, own code) for when the bridged
# provider cannot be built: serves the SDK's Role/Database/Schema/Grant/GrantRole/
# DefaultPrivileges/Extension with plain SQL. Skipped as soon as the real one exists.
step_pgsubset() {
  local ver="$PROVIDER_POSTGRESQL_VERSION" real
  if foreign_plugin postgresql "$ver"; then echo "skipped|resource-postgresql v$ver is in the plugin cache"; return 0; fi
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
    mkdir -p "$out"
    go_wrapper_build "$b" . "$out/$bin" -ldflags "-s -w -X main.version=$ver"
    printf '{"name":"postgresql","version":"%s"}\n' "$ver" >"$out/schema.json"
    echo '{}' >"$out/bridge-metadata.json"
    prune_siblings "$out" "$CACHE/bin/providers/postgresql-standin/$ver-*"
    prune_siblings "$b" "$CACHE/build/pgsubset-$ver-*"
  fi
  link "$out/$bin" "$bin"
  install_plugin postgresql "$ver" "$out" schema.json bridge-metadata.json
  echo "$status|$out/$bin (STAND-IN subset: Role Database Schema Grant GrantRole DefaultPrivileges Extension)"
}

# pulumi-kubernetes, a native provider, built as upstream's Makefile does: its
# cmd/pulumi-resource-kubernetes with the two files that `go generate` writes there and upstream
# does not commit (schema.json with `.version` set, and the compacted terraform-mapping.json),
# in a wrapper module that restates its one replace (sdk/v4 => ../sdk, published at the same
# release).
step_provider_kubernetes() {
  local ver="$PROVIDER_KUBERNETES_VERSION" code="$PROVIDER_KUBERNETES_VERSION"
  if foreign_plugin kubernetes "$ver"; then echo "found|resource-kubernetes v$ver in the plugin cache"; return 0; fi
  local h out bin=pulumi-resource-kubernetes status=cached
  h="$(printf '%s %s' "$KUBERNETES_PROVIDER_MODULE" "$code" | sha256sum | cut -c1-12)"
  out="$CACHE/bin/providers/kubernetes/$ver-$h"
  if [ ! -x "$out/$bin" ]; then
    status=built
    local b="$CACHE/build/provider-kubernetes-$h" src
    rm -rf "$b"; mkdir -p "$b" "$out"
    src="$(moddir "$KUBERNETES_PROVIDER_MODULE")"
    cp "$src/cmd/$bin/main.go" "$b/main.go"
    jq -c --arg v "$code" '.version = $v' "$src/cmd/$bin/schema.json" >"$b/schema-embed.json"
    jq -c . "$src/cmd/$bin/terraform-mapping.json" >"$b/terraform-mapping-embed.json"
    cat >"$b/go.mod" <<MOD
module pgfleet.local/build/provider-kubernetes

go 1.26

require github.com/pulumi/pulumi-kubernetes/provider/v4 ${KUBERNETES_PROVIDER_MODULE#*@}

replace github.com/pulumi/pulumi-kubernetes/sdk/v4 => github.com/pulumi/pulumi-kubernetes/sdk/v4 v$code
MOD
    log "building provider kubernetes $code (several minutes; log $LOGS/provider-kubernetes.log)"
    go_wrapper_build "$b" . "$out/$bin" \
      -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$code"
    prune_siblings "$out" "$CACHE/bin/providers/kubernetes/$ver-*"
    rm -rf "$b"
  fi
  install_plugin kubernetes "$ver" "$out"
  echo "$status|$out/$bin"
}
