#!/bin/sh
# pgfleet/openbao entrypoint: runs `bao` (OpenBao, or the bao-compat wrapper around Vault) as
# user openbao.
# The dev root token may come as a file: BAO_DEV_ROOT_TOKEN_ID_FILE / VAULT_DEV_ROOT_TOKEN_ID_FILE
# (the platform's way on Docker, so no token shows in the container's config); a *_FILE wins
# over the plain variable. Started as root, the files become user openbao's alone (0400) before
# root is dropped. The dev server takes its root token only from its environment or a flag (no
# file option), so the value is exported here, just before exec: it then sits in the server's
# own environment only, never in the container's config or argv.
set -eu
SECRETS="BAO_DEV_ROOT_TOKEN_ID VAULT_DEV_ROOT_TOKEN_ID BAO_TOKEN VAULT_TOKEN"

file_of() { printenv "${1}_FILE" 2>/dev/null || true; }

if [ "$(id -u)" = 0 ]; then
  for name in $SECRETS; do
    file="$(file_of "$name")"
    if [ -n "$file" ] && [ -f "$file" ]; then
      chown openbao:openbao "$file" 2>/dev/null && chmod 0400 "$file" 2>/dev/null || true
    fi
  done
  export HOME=/openbao
  exec setpriv --reuid=openbao --regid=openbao --init-groups "$0" "$@"
fi

for name in $SECRETS; do
  file="$(file_of "$name")"
  [ -n "$file" ] || continue
  if [ ! -r "$file" ]; then
    echo "openbao-entrypoint: ${name}_FILE ($file) is not readable" >&2
    exit 1
  fi
  export "$name=$(cat "$file")"
  unset "${name}_FILE"
done
# The dev server prints its root token and unseal key when it starts: the container's log
# (`docker logs`, a log shipper) carries neither.
log="$(mktemp -u /tmp/bao-log.XXXXXX)"
mkfifo -m 600 "$log"
sed -u -e 's/^\(Root Token\|Unseal Key\): .*/\1: (not logged)/' <"$log" &
exec bao "$@" >"$log" 2>&1
