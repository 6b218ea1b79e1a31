#!/bin/sh
# `bao` compatibility wrapper, installed only when OpenBao itself could not be built: runs the
# HashiCorp Vault binary (same CLI and HTTP API for what pgfleet uses) with OpenBao's BAO_*
# environment variables mapped to VAULT_* (an explicitly set VAULT_* wins).
# The vault binary is $PGFLEET_VAULT_BIN, else `vault` beside this script, else on PATH.
set -eu
for var in $(env | sed -n 's/^\(BAO_[A-Za-z0-9_]*\)=.*/\1/p'); do
  target="VAULT_${var#BAO_}"
  if [ -z "$(printenv "$target" 2>/dev/null || true)" ]; then
    export "$target=$(printenv "$var")"
  fi
done
self_dir=$(dirname "$(readlink -f "$0")")
if [ -n "${PGFLEET_VAULT_BIN:-}" ]; then exec "$PGFLEET_VAULT_BIN" "$@"; fi
if [ -x "$self_dir/vault" ]; then exec "$self_dir/vault" "$@"; fi
exec vault "$@"
