# shellcheck shell=bash
# Servers the stacks run beside PostgreSQL, built from the module proxy: a Vault-API server
# (OpenBao when served, else HashiCorp Vault) and an S3-compatible store (versitygw).

# Vault-API server: OpenBao `bao` if the proxy serves it, else HashiCorp Vault `vault`.
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
  # Keyed by content (sdk pins + setup/patches/vault), so a changed patch builds anew beside the
  # old binary instead of over it.
  local vpatches="$SETUP_DIR/patches/vault" vkey
  vkey="$(hash_of "$VAULT_SERVER_SDK_VERSION" "$VAULT_SERVER_SDK_KEYSUTIL_VERSION" "$vpatches")"
  local vout="$CACHE/bin/vault/$VAULT_SERVER_VERSION-$vkey"
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
    # Patches to vault's own files (setup/patches/vault/*.patch, paths relative to the vault
    # module; `go build -overlay` may not replace files in the module cache): a copy of the vault
    # module with the patches applied, in place of the published one. Only when there are any.
    # approle-refuse-expired-secret-id.patch: the approle login refuses a secret_id past its
    # expiration_time (upstream leaves that to a once-a-minute tidy; see setup/README.md).
    rm -rf "$vb/vault"
    if compgen -G "$vpatches/*.patch" >/dev/null; then
      local vdir p
      vdir="$(moddir "github.com/hashicorp/vault@$VAULT_SERVER_VERSION")"
      cp -r "$vdir" "$vb/vault"; chmod -R u+w "$vb/vault"
      for p in "$vpatches"/*.patch; do
        patch -d "$vb/vault" -p1 --forward --no-backup-if-mismatch -s <"$p" >&2 \
          || { echo "$p did not apply to vault $VAULT_SERVER_VERSION" >&2; return 1; }
      done
      printf '\nreplace github.com/hashicorp/vault => ./vault\n' >>"$vb/go.mod"
    fi
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/hashicorp/vault"\n' >"$vb/tools.go"
    log "building hashicorp vault $VAULT_SERVER_VERSION (long; log $LOGS/vaultserver.log)"
    (cd "$vb" && go mod tidy && $NICE go build -trimpath \
      -ldflags "-s -w -X github.com/hashicorp/vault/version.Version=${VAULT_SERVER_VERSION#v}" \
      -o "$vout/vault.tmp" github.com/hashicorp/vault) >&2
    mv "$vout/vault.tmp" "$vout/vault"
    prune_siblings "$vout" "$CACHE/bin/vault/$VAULT_SERVER_VERSION-*"
  fi
  # The images step (step_openbao_image) copies $CACHE/bin/vault/$VAULT_SERVER_VERSION/vault: a
  # hard link to this build, swapped in by rename so that a server running the old one keeps it.
  local current="$CACHE/bin/vault/$VAULT_SERVER_VERSION"
  mkdir -p "$current"
  if [ ! "$vout/vault" -ef "$current/vault" ]; then
    ln -f "$vout/vault" "$current/vault.tmp"
    mv -f "$current/vault.tmp" "$current/vault"
  fi
  link "$vout/vault" vault
  # `bao` on PATH: wrapper mapping BAO_* env to VAULT_* around this vault (see setup/bin/bao-compat.sh)
  install -m 0755 "$SETUP_DIR/bin/bao-compat.sh" "$vout/bao"
  link "$vout/bao" bao
  echo "$status|$vout/vault + bao wrapper (fallback: openbao $OPENBAO_VERSION not served by the proxy)"
}


# S3-compatible object store: versitygw (posix backend), for pgBackRest S3 repositories.
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
